// Stopping a worker with SIGTERM mid-job (a child process on a real Redis, as `npm run worker`
// stops): the job finishes within the grace, or past it goes back to the queue without using
// up an attempt and another worker completes it; a second signal stops the worker at once.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { after, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { QueueProbe } from '../../bot/ops/health.ts';
import { BullQueue, type JobRunner, startBullRunner } from '../../bot/queue/index.ts';

const redisUrl = process.env.CLORA_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = `clora-test-${randomUUID().slice(0, 8)}`;
const child = fileURLToPath(new URL('./shutdown-worker-child.ts', import.meta.url));
const cleanups: (() => Promise<unknown>)[] = [];

type Job = { label: string };
type Result = { label: string; by: string };

async function setup() {
  const queueName = `q-${randomUUID().slice(0, 8)}`;
  // One attempt only: a hand-back that counted as a failure would fail the job for good.
  const queue = await BullQueue.open<Job, Result>({
    redisUrl,
    queueName,
    prefix,
    limits: { perUser: 10, perScope: 10 },
    resultTtlMs: 60_000,
    retry: { attempts: 1, backoffMs: 10 },
  });
  cleanups.push(() => queue.close());
  return { queue, queueName };
}

function startChild(queueName: string, workMs: number, graceMs: number) {
  const proc = spawn(process.execPath, ['--import', 'tsx', child], {
    env: {
      ...process.env,
      REDIS_URL: redisUrl,
      QUEUE_NAME: queueName,
      PREFIX: prefix,
      WORK_MS: `${workMs}`,
      GRACE_MS: `${graceMs}`,
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
  const exited = new Promise<{ code: number | null; at: number }>((resolve) =>
    proc.once('exit', (code) => resolve({ code, at: Date.now() })),
  );
  cleanups.push(async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    await exited;
  });
  const saw = async (line: string, timeoutMs = 20_000) => {
    const deadline = Date.now() + timeoutMs;
    while (!lines.some((l) => l === line || l.includes(` ${line}`))) {
      if (Date.now() > deadline) assert.fail(`the child never said "${line}"; said ${lines.join(' | ')}`);
      if (proc.exitCode !== null) assert.fail(`the child exited (${proc.exitCode}): ${lines.join(' | ')}`);
      await sleep(20);
    }
  };
  return { proc, saw, exited, lines };
}

async function enqueued(queue: BullQueue<Job, Result>, label: string): Promise<string> {
  const outcome = await queue.enqueue({ label }, { userId: 'u1', scope: 's1' });
  assert.ok(outcome.ok);
  return outcome.id;
}

async function settled(queue: BullQueue<Job, Result>, id: string, state: string, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const record = await queue.get(id);
    if (record?.state === state) return record;
    if (Date.now() > deadline) assert.fail(`job ${id} is ${record?.state}, not ${state}`);
    await sleep(50);
  }
}

describe('worker shutdown on SIGTERM', { timeout: 90_000 }, () => {
  after(async () => {
    for (const clean of cleanups.reverse()) await clean().catch(() => undefined);
  });

  test('SIGTERM mid-job: the running job finishes within the grace, then the worker exits 0', async () => {
    const { queue, queueName } = await setup();
    const worker = startChild(queueName, 1500, 20_000);
    await worker.saw('ready');
    const id = await enqueued(queue, 'finishes');
    await worker.saw(`started ${id}`);
    worker.proc.kill('SIGTERM');
    const { code } = await worker.exited;
    assert.equal(code, 0);
    assert.ok(worker.lines.includes(`done ${id}`), 'the job ran to its end');
    const record = await settled(queue, id, 'completed');
    assert.deepEqual(record.result?.value, { label: 'finishes', by: 'child' });
    // Workers record BullMQ's per-minute metrics, so /metrics counts completions too.
    const probe = new QueueProbe({ redisUrl, queueName, prefix });
    cleanups.push(() => probe.close());
    assert.match(await probe.metrics(), new RegExp(`bullmq_job_completed_total\\{queue="${queueName}"\\} 1`));
  });

  test('past the grace the job is handed back, its attempt unspent, and another worker completes it', async () => {
    const { queue, queueName } = await setup();
    const worker = startChild(queueName, 60_000, 1000);
    await worker.saw('ready');
    const id = await enqueued(queue, 'handed back');
    await worker.saw(`started ${id}`);
    const signalled = Date.now();
    worker.proc.kill('SIGTERM');
    const { code, at } = await worker.exited;
    assert.equal(code, 0);
    assert.ok(at - signalled < 8000, `stopped ${at - signalled} ms after SIGTERM (grace 1 s)`);
    assert.ok(!worker.lines.includes(`done ${id}`));
    await settled(queue, id, 'queued');

    const survivor: JobRunner = await startBullRunner<Job, Result>(
      async (job) => ({ value: { label: job.data.label, by: 'survivor' } }),
      { redisUrl, queueName, prefix },
    );
    cleanups.push(() => survivor.close());
    const record = await settled(queue, id, 'completed');
    assert.deepEqual(record.result?.value, { label: 'handed back', by: 'survivor' });
  });

  test('a second SIGTERM stops the worker at once', async () => {
    const { queue, queueName } = await setup();
    const worker = startChild(queueName, 60_000, 60_000);
    await worker.saw('ready');
    const id = await enqueued(queue, 'stuck');
    await worker.saw(`started ${id}`);
    worker.proc.kill('SIGTERM');
    await worker.saw('SIGTERM: stopping');
    const again = Date.now();
    worker.proc.kill('SIGTERM');
    const { code, at } = await worker.exited;
    assert.equal(code, 130);
    assert.ok(at - again < 3000, `exited ${at - again} ms after the second signal`);
  });
});
