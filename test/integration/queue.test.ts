// One behaviour, two queues: every case here runs against LocalQueue and against BullQueue
// on a real Redis (CLORA_TEST_REDIS_URL, default redis://127.0.0.1:6379), each test on its
// own queue under a prefix unique to this run. BullQueue alone also faces dead workers (in
// child processes) and a Redis server that goes away and comes back.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import {
  BullQueue,
  type BullRunnerOptions,
  type JobContext,
  type JobOutput,
  type JobQueue,
  type JobRunner,
  LocalQueue,
  type QueueEvent,
  type QueueSettings,
  type RunnerOptions,
  startBullRunner,
  UserError,
} from '../../bot/queue/index.ts';

interface TestJob {
  label: string;
  /** Wait for this gate to open before going on. */
  gate?: string;
  sleepMs?: number;
  progressSteps?: number;
  /** Fail this many first attempts with a transient error. */
  failAttempts?: number;
  userError?: string;
  /** Run until cancelled. */
  awaitCancel?: boolean;
  blob?: boolean;
}
interface TestResult {
  label: string;
  attempt: number;
  by?: string;
}
interface TestProgress {
  step: number;
}
type TestQueue = JobQueue<TestJob, TestResult, TestProgress>;
type TestWorkerOptions = RunnerOptions &
  Partial<Pick<BullRunnerOptions, 'lockDurationMs' | 'stalledIntervalMs'>>;
type Processor = (job: JobContext<TestJob, TestProgress>) => Promise<JobOutput<TestResult>>;

const redisUrl = process.env.CLORA_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const runPrefix = `clora-test-${randomUUID().slice(0, 8)}`;
const png = randomBytes(100_000);
const fast: QueueSettings = {
  limits: { perUser: 10, perScope: 100 },
  resultTtlMs: 60_000,
  retry: { attempts: 3, backoffMs: 30 },
};

interface Backend {
  name: string;
  persistent: boolean;
  /** A bot-side queue; the same `name` reaches the same stored jobs where storage persists. */
  open(settings: QueueSettings, name: string): Promise<TestQueue>;
  worker(
    queue: TestQueue,
    name: string,
    processor: Processor,
    options?: TestWorkerOptions,
  ): Promise<JobRunner>;
}

const local: Backend = {
  name: 'LocalQueue',
  persistent: false,
  open: async (settings) => new LocalQueue<TestJob, TestResult, TestProgress>(settings),
  worker: async (queue, _name, processor, options) =>
    (queue as LocalQueue<TestJob, TestResult, TestProgress>).startRunner(processor, options),
};

const bull: Backend = {
  name: 'BullQueue',
  persistent: true,
  open: (settings, name) =>
    BullQueue.open<TestJob, TestResult, TestProgress>({
      redisUrl,
      queueName: name,
      prefix: runPrefix,
      ...settings,
    }),
  worker: (_queue, name, processor, options) =>
    startBullRunner(processor, { redisUrl, queueName: name, prefix: runPrefix, ...options }),
};

/** Every event a queue emits, with a way to wait for one. */
class EventLog {
  readonly events: QueueEvent<TestProgress>[] = [];
  /** When each event was heard. */
  readonly heardAt: number[] = [];
  #waiters: (() => void)[] = [];

  constructor(queue: TestQueue) {
    for (const type of ['started', 'progress', 'completed', 'failed', 'cancelled'] as const) {
      queue.on(type, (event) => {
        this.events.push(event);
        this.heardAt.push(Date.now());
        for (const wake of this.#waiters) wake();
      });
    }
  }

  when(type: QueueEvent['type'], id: string): number | undefined {
    const at = this.events.findIndex((e) => e.type === type && e.id === id);
    return at < 0 ? undefined : this.heardAt[at];
  }

  of(id: string): string[] {
    return this.events.filter((e) => e.id === id).map((e) => e.type);
  }

  async next<T extends QueueEvent['type']>(
    type: T,
    id: string,
    timeoutMs = 10_000,
  ): Promise<Extract<QueueEvent<TestProgress>, { type: T }>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.events.find((e) => e.type === type && e.id === id);
      if (found) return found as Extract<QueueEvent<TestProgress>, { type: T }>;
      const left = deadline - Date.now();
      if (left <= 0)
        assert.fail(`no ${type} event for ${id} within ${timeoutMs} ms; saw ${this.of(id).join(', ')}`);
      await new Promise<void>((wake) => {
        const timer = setTimeout(wake, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          wake();
        });
      });
      this.#waiters = [];
    }
  }
}

/** What the test processor did: job starts in order, calls per label, signals seen. */
class Harness {
  readonly starts: string[] = [];
  readonly calls = new Map<string, number>();
  readonly aborted: string[] = [];
  readonly #gates = new Map<string, { open: () => void; opened: Promise<void> }>();
  readonly teardown = new AbortController();

  gate(name: string): Promise<void> {
    return this.#gateOf(name).opened;
  }

  open(name: string): void {
    this.#gateOf(name).open();
  }

  #gateOf(name: string) {
    let gate = this.#gates.get(name);
    if (!gate) {
      let open = () => {};
      const opened = new Promise<void>((resolve) => {
        open = resolve;
      });
      gate = { open, opened };
      this.#gates.set(name, gate);
    }
    return gate;
  }

  openAll(): void {
    for (const gate of this.#gates.values()) gate.open();
    this.teardown.abort();
  }

  processor(by?: string): Processor {
    return async (job) => {
      const d = job.data;
      this.starts.push(d.label);
      this.calls.set(d.label, (this.calls.get(d.label) ?? 0) + 1);
      if (d.gate) await Promise.race([this.gate(d.gate), once(this.teardown.signal)]);
      if (d.awaitCancel) {
        await once(AbortSignal.any([job.signal, this.teardown.signal]));
        if (job.signal.aborted) this.aborted.push(`${d.label}:${(job.signal.reason as Error).name}`);
        throw job.signal.reason ?? new Error('torn down');
      }
      for (let step = 1; step <= (d.progressSteps ?? 0); step++) await job.progress({ step });
      if (d.sleepMs) await sleep(d.sleepMs);
      if (d.userError) throw new UserError(d.userError);
      if (job.attempt <= (d.failAttempts ?? 0)) throw new Error(`flaky on attempt ${job.attempt}`);
      return {
        value: { label: d.label, attempt: job.attempt, ...(by && { by }) },
        ...(d.blob && { blobs: { 'image.png': png } }),
      };
    };
  }
}

async function until(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`waited ${timeoutMs} ms for ${what}`);
    await sleep(10);
  }
}

function once(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
}

function ok(outcome: Awaited<ReturnType<TestQueue['enqueue']>>): string {
  assert.ok(outcome.ok, `refused: ${outcome.ok ? '' : outcome.message}`);
  return outcome.id;
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

/** A queue with a worker (unless `worker: false`), torn down after the test. */
async function setup(
  backend: Backend,
  options: { settings?: Partial<QueueSettings>; worker?: false | TestWorkerOptions; name?: string } = {},
) {
  const name = options.name ?? `q-${randomUUID().slice(0, 8)}`;
  const queue = await backend.open({ ...fast, ...options.settings }, name);
  const log = new EventLog(queue);
  const harness = new Harness();
  let worker: JobRunner | undefined;
  const startWorker = async (workerOptions: TestWorkerOptions = {}, by?: string) => {
    worker = await backend.worker(queue, name, harness.processor(by), workerOptions);
    return worker;
  };
  if (options.worker !== false) await startWorker(options.worker);
  cleanups.push(async () => {
    harness.openAll();
    await worker?.close();
    await queue.close();
  });
  return { name, queue, log, harness, startWorker };
}

const owner = (userId: string, scope = 'guild-1') => ({ userId, scope });

for (const backend of [local, bull]) {
  describe(backend.name, { timeout: 30_000 }, () => {
    test('enqueue → started → progress → completed, with result value and blob', async () => {
      const { queue, log } = await setup(backend);
      const id = ok(await queue.enqueue({ label: 'a', progressSteps: 3, blob: true }, owner('u1')));
      await log.next('completed', id);
      assert.deepEqual(log.of(id), ['started', 'progress', 'progress', 'progress', 'completed']);
      const steps = log.events.filter((e) => e.type === 'progress').map((e) => e.progress);
      assert.deepEqual(steps, [{ step: 1 }, { step: 2 }, { step: 3 }]);
      const record = await queue.get(id);
      assert.ok(record);
      assert.equal(record.state, 'completed');
      assert.deepEqual(record.result?.value, { label: 'a', attempt: 1 });
      assert.ok(Buffer.from(record.result!.blobs['image.png']).equals(png), 'blob bytes come back intact');
      assert.deepEqual(record.data, { label: 'a', progressSteps: 3, blob: true });
      assert.deepEqual(record.owner, owner('u1'));
      assert.deepEqual(record.progress, { step: 3 });
      assert.equal(record.attempts, 1);
      assert.equal(record.priority, 5);
      assert.equal(record.cancelRequested, false);
      assert.ok(record.enqueuedAt <= record.startedAt! && record.startedAt! <= record.finishedAt!);
      assert.equal(await queue.position(id), undefined, 'a finished job has no place in the queue');
      assert.equal(await queue.get('no-such-job'), undefined);
    });

    test('transient failures are retried with backoff; exhausted retries fail', async () => {
      const { queue, log, harness } = await setup(backend);
      const flaky = ok(await queue.enqueue({ label: 'flaky', failAttempts: 1 }, owner('u1')));
      const broken = ok(await queue.enqueue({ label: 'broken', failAttempts: 99 }, owner('u2')));
      await log.next('completed', flaky);
      const failed = await log.next('failed', broken);
      assert.deepEqual(failed.error, { message: 'flaky on attempt 3', kind: 'internal' });
      assert.deepEqual((await queue.get(flaky))?.result?.value, { label: 'flaky', attempt: 2 });
      assert.equal((await queue.get(flaky))?.error, undefined, 'the earlier failure is not kept on success');
      assert.equal(harness.calls.get('flaky'), 2);
      assert.equal(harness.calls.get('broken'), 3);
      const record = await queue.get(broken);
      assert.equal(record?.state, 'failed');
      assert.equal(record?.attempts, 3);
      assert.deepEqual(log.of(flaky), ['started', 'started', 'completed'], 'no failed event while retrying');
    });

    test('a UserError fails the job at once, without retry', async () => {
      const { queue, log, harness } = await setup(backend);
      const id = ok(await queue.enqueue({ label: 'bad', userError: "unknown LoRA 'pengiun'" }, owner('u1')));
      const failed = await log.next('failed', id);
      assert.deepEqual(failed.error, { message: "unknown LoRA 'pengiun'", kind: 'user' });
      const record = await queue.get(id);
      assert.equal(record?.state, 'failed');
      assert.equal(record?.attempts, 1);
      assert.deepEqual(record?.error, failed.error);
      await sleep(150);
      assert.equal(harness.calls.get('bad'), 1);
    });

    test('per-user limit: a refusal value, freed when the job ends', async () => {
      const { queue, log, harness } = await setup(backend, {
        settings: { limits: { perUser: 1, perScope: 100 } },
      });
      const first = ok(await queue.enqueue({ label: 'one', gate: 'one' }, owner('u1')));
      const refused = await queue.enqueue({ label: 'two' }, owner('u1', 'guild-2'));
      assert.equal(refused.ok, false);
      assert.ok(!refused.ok);
      assert.equal(refused.reason, 'user-limit');
      assert.equal(refused.limit, 1);
      assert.match(refused.message, /already have a job queued or running/);
      ok(await queue.enqueue({ label: 'other user' }, owner('u2')));
      harness.open('one');
      await log.next('completed', first);
      ok(await queue.enqueue({ label: 'three' }, owner('u1')));
    });

    test('per-scope cap: counts every user of a server, freed by cancel', async () => {
      const { queue } = await setup(backend, {
        settings: { limits: { perUser: 5, perScope: 2 } },
        worker: false,
      });
      const a = ok(await queue.enqueue({ label: 'a' }, owner('u1', 'guild-1')));
      ok(await queue.enqueue({ label: 'b' }, owner('u2', 'guild-1')));
      const refused = await queue.enqueue({ label: 'c' }, owner('u3', 'guild-1'));
      assert.deepEqual(
        { ok: refused.ok, reason: !refused.ok && refused.reason, limit: !refused.ok && refused.limit },
        { ok: false, reason: 'scope-cap', limit: 2 },
      );
      ok(await queue.enqueue({ label: 'c' }, owner('u3', 'workspace-T1')));
      assert.equal(await queue.cancel(a), true);
      ok(await queue.enqueue({ label: 'c' }, owner('u3', 'guild-1')));
    });

    test('priorities: lower numbers first, arrival order within a priority', async () => {
      const { queue, log, harness } = await setup(backend, { worker: { concurrency: 1 } });
      const blocker = ok(await queue.enqueue({ label: 'blocker', gate: 'blocker' }, owner('u0')));
      await log.next('started', blocker);
      const ids = [
        ok(await queue.enqueue({ label: 'low' }, { ...owner('u1'), priority: 10 })),
        ok(await queue.enqueue({ label: 'normal-1' }, owner('u2'))),
        ok(await queue.enqueue({ label: 'high' }, { ...owner('u3'), priority: 1 })),
        ok(await queue.enqueue({ label: 'normal-2' }, { ...owner('u4'), priority: 5 })),
      ];
      harness.open('blocker');
      for (const id of ids) await log.next('completed', id);
      assert.deepEqual(harness.starts, ['blocker', 'high', 'normal-1', 'normal-2', 'low']);
      await assert.rejects(queue.enqueue({ label: 'x' }, { ...owner('u5'), priority: 0 }), TypeError);
    });

    test('cancel a queued job: it never runs', async () => {
      const { queue, log, harness } = await setup(backend, { worker: { concurrency: 1 } });
      const blocker = ok(await queue.enqueue({ label: 'blocker', gate: 'blocker' }, owner('u0')));
      await log.next('started', blocker);
      const doomed = ok(await queue.enqueue({ label: 'doomed' }, owner('u1')));
      const after = ok(await queue.enqueue({ label: 'after' }, owner('u2')));
      assert.equal(await queue.cancel(doomed), true);
      await log.next('cancelled', doomed);
      assert.equal((await queue.get(doomed))?.state, 'cancelled');
      assert.equal((await queue.position(after))?.position, 1, 'the cancelled job no longer counts');
      harness.open('blocker');
      await log.next('completed', after);
      assert.deepEqual(harness.starts, ['blocker', 'after']);
      assert.deepEqual(log.of(doomed), ['cancelled']);
      assert.equal(await queue.cancel(doomed), false, 'already cancelled');
      assert.equal(await queue.cancel(after), false, 'already completed');
      assert.equal(await queue.cancel('no-such-job'), false);
    });

    test('cancel a running job: its signal fires, it ends cancelled, no retry', async () => {
      const { queue, log, harness } = await setup(backend, {
        settings: { limits: { perUser: 1, perScope: 10 } },
      });
      const id = ok(await queue.enqueue({ label: 'long', awaitCancel: true }, owner('u1')));
      await until(() => harness.starts.includes('long'), 'the processor to start');
      assert.equal(await queue.cancel(id), true);
      await log.next('cancelled', id);
      assert.deepEqual(harness.aborted, ['long:AbortError']);
      const record = await queue.get(id);
      assert.equal(record?.state, 'cancelled');
      assert.equal(record?.cancelRequested, true);
      assert.equal(record?.attempts, 1);
      assert.deepEqual(log.of(id), ['started', 'cancelled']);
      ok(await queue.enqueue({ label: 'next' }, owner('u1')));
      await sleep(100);
      assert.equal(harness.calls.get('long'), 1);
    });

    test('position and ETA from recent run times', async () => {
      const { queue, log, harness } = await setup(backend, { worker: { concurrency: 1 } });
      for (let i = 0; i < 3; i++) {
        await log.next(
          'completed',
          ok(await queue.enqueue({ label: `warm-${i}`, sleepMs: 150 }, owner('u0'))),
        );
      }
      const blocker = ok(await queue.enqueue({ label: 'blocker', gate: 'blocker' }, owner('u0')));
      await log.next('started', blocker);
      const waiting = [];
      for (let i = 0; i < 3; i++)
        waiting.push(ok(await queue.enqueue({ label: `w-${i}` }, owner(`u${i + 1}`))));
      assert.deepEqual(await queue.position(blocker), { position: 0, etaMs: 0 });
      const places = await Promise.all(waiting.map((id) => queue.position(id)));
      assert.deepEqual(
        places.map((p) => p?.position),
        [1, 2, 3],
      );
      const etas = places.map((p) => p?.etaMs ?? Number.NaN);
      const step1 = etas[1] - etas[0];
      const step2 = etas[2] - etas[1];
      // One runner: each job ahead adds one typical run (~150 ms).
      assert.ok(step1 >= 130 && step1 <= 400, `ETA step ${step1} ms`);
      // The blocker's remaining time shrinks between the three look-ups.
      assert.ok(Math.abs(step1 - step2) <= 25, `steps ${step1} and ${step2} differ`);
      assert.ok(etas[0] >= 0 && etas[0] <= step1 + 25, `first ETA ${etas[0]} ms`);
      harness.open('blocker');
      for (const id of waiting) await log.next('completed', id);
    });

    test('results expire after their TTL', async () => {
      const { queue, log } = await setup(backend, { settings: { resultTtlMs: 400 } });
      const id = ok(await queue.enqueue({ label: 'short-lived', blob: true }, owner('u1')));
      await log.next('completed', id);
      assert.equal((await queue.get(id))?.state, 'completed');
      await sleep(700);
      assert.equal(await queue.get(id), undefined);
    });

    test(
      backend.persistent
        ? 'restart: a new queue object sees old jobs and results; a rerun reads the request back'
        : 'restart: nothing persists (documented); a new queue starts empty',
      async () => {
        const first = await setup(backend);
        const id = ok(await first.queue.enqueue({ label: 'kept', blob: true }, owner('u1')));
        await first.log.next('completed', id);
        const before = await first.queue.get(id);
        await cleanups.pop()!();
        const second = await setup(backend, { name: first.name });
        const after = await second.queue.get(id);
        if (!backend.persistent) {
          assert.equal(after, undefined);
          return;
        }
        assert.deepEqual(after, before);
        const rerun = ok(await second.queue.enqueue({ ...after!.data, label: 'rerun' }, after!.owner));
        assert.deepEqual(
          (await second.log.next('completed', rerun)) && (await second.queue.get(rerun))?.data,
          {
            label: 'rerun',
            blob: true,
          },
        );
      },
    );
  });
}

describe('BullQueue with workers and Redis failing', { timeout: 60_000 }, () => {
  const child = fileURLToPath(new URL('./queue-worker-child.ts', import.meta.url));

  function startChild(name: string, mode: 'hang' | 'block', blockMs = 0) {
    const proc = spawn(process.execPath, ['--import', 'tsx', child], {
      env: {
        ...process.env,
        REDIS_URL: redisUrl,
        QUEUE_NAME: name,
        PREFIX: runPrefix,
        MODE: mode,
        BLOCK_MS: `${blockMs}`,
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const lines: string[] = [];
    let buffered = '';
    proc.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const parts = buffered.split('\n');
      buffered = parts.pop() ?? '';
      lines.push(...parts);
    });
    cleanups.push(async () => {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGKILL');
        await new Promise((resolve) => proc.once('exit', resolve));
      }
    });
    const saw = async (line: string, timeoutMs = 15_000) => {
      const deadline = Date.now() + timeoutMs;
      while (!lines.includes(line)) {
        if (Date.now() > deadline)
          assert.fail(`child worker never said "${line}"; said ${lines.join(' | ')}`);
        if (proc.exitCode !== null) assert.fail(`child worker exited (${proc.exitCode})`);
        await sleep(20);
      }
    };
    return { proc, saw };
  }

  test('a worker killed mid-job: another worker picks the job up and completes it', async () => {
    const { name, queue, log, startWorker } = await setup(bull, { worker: false });
    const dying = startChild(name, 'hang');
    await dying.saw('ready');
    const id = ok(await queue.enqueue({ label: 'orphan' }, owner('u1')));
    await dying.saw(`started ${id}`);
    dying.proc.kill('SIGKILL');
    await startWorker({ lockDurationMs: 1000, stalledIntervalMs: 500 }, 'survivor');
    await log.next('completed', id, 15_000);
    const record = await queue.get(id);
    assert.deepEqual(record?.result?.value, { label: 'orphan', attempt: 2, by: 'survivor' });
    assert.equal(record?.attempts, 2);
    assert.deepEqual(log.of(id), ['started', 'started', 'completed']);
  });

  test('a worker stuck past its lock: the job runs again elsewhere and completes once', async () => {
    const { name, queue, log, startWorker } = await setup(bull, { worker: false });
    const stuck = startChild(name, 'block', 2500);
    await stuck.saw('ready');
    const id = ok(await queue.enqueue({ label: 'contested' }, owner('u1')));
    await stuck.saw(`started ${id}`);
    await startWorker({ lockDurationMs: 1000, stalledIntervalMs: 500 }, 'survivor');
    await log.next('completed', id, 15_000);
    await stuck.saw(`done ${id}`);
    await sleep(1000);
    assert.deepEqual(log.of(id), ['started', 'started', 'completed'], 'one completion');
    const record = await queue.get(id);
    assert.equal(record?.state, 'completed');
    assert.equal(record?.result?.value.by, 'survivor', 'the first result stored stays');
  });

  test('a restarted bot hears the events it missed, by consumer name', async () => {
    const { name, queue, log } = await setup(bull);
    const consumer = `bot-${randomUUID().slice(0, 8)}`;
    const open = () =>
      BullQueue.open<TestJob, TestResult, TestProgress>({
        redisUrl,
        queueName: name,
        prefix: runPrefix,
        consumer,
        ...fast,
      });
    const before = await open();
    const heard = new EventLog(before);
    const a = ok(await queue.enqueue({ label: 'a' }, owner('u1')));
    await heard.next('completed', a);
    await before.close();
    const b = ok(await queue.enqueue({ label: 'b' }, owner('u2')));
    await log.next('completed', b);
    const restarted = await open();
    cleanups.push(() => restarted.close());
    const replayed = new EventLog(restarted);
    await replayed.next('completed', b);
    assert.deepEqual(replayed.of(b), ['started', 'completed']);
    assert.deepEqual(replayed.of(a), [], 'events handled before the restart are not replayed');
  });

  const redisServer = spawnSync('redis-server', ['--version']).status === 0;
  test('Redis goes away mid-job and comes back: queued and running jobs complete', {
    skip: redisServer ? false : 'redis-server is not installed: cannot restart a private Redis',
  }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'clora-redis-'));
    const port = await freePort();
    // Persistence on: a Redis that restarts empty has lost its queue by definition.
    const args = ['--port', `${port}`, '--bind', '127.0.0.1', '--save', '', '--appendonly', 'yes'];
    const server = { proc: undefined as ChildProcess | undefined };
    const start = async () => {
      server.proc = spawn('redis-server', [...args, '--appendfsync', 'always', '--dir', dir], {
        stdio: 'ignore',
      });
      await waitForPing(port);
    };
    const stop = async () => {
      const proc = server.proc;
      if (proc && proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGKILL');
        await new Promise((resolve) => proc.once('exit', resolve));
      }
    };
    cleanups.push(async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    });
    await start();
    const url = `redis://127.0.0.1:${port}`;
    const name = 'q-restart';
    const queue = await BullQueue.open<TestJob, TestResult, TestProgress>({
      redisUrl: url,
      queueName: name,
      ...fast,
    });
    const log = new EventLog(queue);
    const harness = new Harness();
    const worker = await startBullRunner(harness.processor(), { redisUrl: url, queueName: name });
    cleanups.push(async () => {
      harness.openAll();
      await worker.close();
      await queue.close();
    });
    const running = ok(await queue.enqueue({ label: 'running', sleepMs: 800 }, owner('u1')));
    const queued = ok(await queue.enqueue({ label: 'queued', sleepMs: 50 }, owner('u2')));
    await log.next('started', running);
    await stop();
    const downAt = Date.now();
    await sleep(1000);
    const restartedAt = Date.now();
    await start();
    await log.next('completed', running, 30_000);
    await log.next('completed', queued, 30_000);
    const record = await queue.get(running);
    assert.equal(record?.state, 'completed');
    assert.ok(record!.finishedAt! > downAt, 'the job was still running when Redis went away');
    assert.ok(log.when('completed', running)! >= restartedAt);
    assert.deepEqual((await queue.get(queued))?.result?.value, { label: 'queued', attempt: 1 });
    const fresh = ok(await queue.enqueue({ label: 'fresh' }, owner('u3')));
    await log.next('completed', fresh);
  });
});

after(async () => {
  // Remove every key this run made on the shared Redis.
  const redis = new Redis(redisUrl);
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${runPrefix}:*`, 'COUNT', 1000);
    if (keys.length > 0) await redis.unlink(...keys);
    cursor = next;
  } while (cursor !== '0');
  await redis.quit();
});

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  assert.ok(address && typeof address === 'object');
  return address.port;
}

async function waitForPing(port: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const pong = await new Promise<boolean>((resolve) => {
      const socket = new Socket();
      socket.setTimeout(500, () => socket.destroy());
      socket.once('error', () => resolve(false));
      socket.once('close', () => resolve(false));
      socket.once('data', (data) => {
        resolve(data.toString().startsWith('+PONG'));
        socket.destroy();
      });
      socket.connect(port, '127.0.0.1', () => socket.write('PING\r\n'));
    });
    if (pong) return;
    await sleep(50);
  }
  assert.fail(`redis-server on port ${port} did not answer`);
}
