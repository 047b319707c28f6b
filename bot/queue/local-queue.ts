// LocalQueue: the single-machine queue. Jobs, limits, retries and results live in this
// process's memory and the processor runs here too; nothing survives a restart.
import { randomUUID } from 'node:crypto';
import { admit, type CheckedOutput, checkOutput, refusal } from './admission.ts';
import { cancellation, failureOf, InvalidOutputError } from './errors.ts';
import { estimateStartMs, RECENT_RUNS, typicalRunMs } from './estimate.ts';
import { EventHub } from './event-hub.ts';
import {
  DEFAULT_RETRY,
  type EnqueueOptions,
  type EnqueueOutcome,
  type JobContext,
  type JobProcessor,
  type JobQueue,
  type JobRecord,
  type JobRunner,
  type Json,
  type QueueEventType,
  type QueueListener,
  type QueuePosition,
  type QueueSettings,
  type RunnerOptions,
} from './types.ts';

/** A job as this process keeps it: the record's fields, with data, progress and result as JSON text. */
interface LocalJob extends Omit<JobRecord<never, never, never>, 'data' | 'progress' | 'result'> {
  dataJson: string;
  progressJson?: string;
  result?: { valueJson: string; blobs: Map<string, Uint8Array> };
  /** Order among equal priorities; renewed when a retry re-enters the queue, as in BullMQ. */
  seq: number;
  run?: AbortController;
  /** The pending retry, or the expiry of a finished job. */
  timer?: NodeJS.Timeout;
}

interface LocalRunner<Data, Result, Progress> {
  processor: JobProcessor<Data, Result, Progress>;
  concurrency: number;
  running: Set<Promise<void>>;
  closing: boolean;
}

export class LocalQueue<Data, Result, Progress = Json> implements JobQueue<Data, Result, Progress> {
  readonly #settings: QueueSettings;
  readonly #retry: { attempts: number; backoffMs: number };
  readonly #jobs = new Map<string, LocalJob>();
  /** Queued jobs in the order they will start. */
  readonly #pending: LocalJob[] = [];
  readonly #liveByUser = new Map<string, Set<string>>();
  readonly #liveByScope = new Map<string, Set<string>>();
  readonly #runners: LocalRunner<Data, Result, Progress>[] = [];
  readonly #recentRunsMs: number[] = [];
  readonly #hub = new EventHub<Progress>();
  #seq = 0;
  #dispatchScheduled = false;
  #closed = false;

  constructor(settings: QueueSettings) {
    this.#settings = settings;
    this.#retry = settings.retry ?? DEFAULT_RETRY;
  }

  async enqueue(data: Data, options: EnqueueOptions): Promise<EnqueueOutcome> {
    if (this.#closed) throw new Error('the queue is closed');
    const admission = admit(data, options);
    const { perUser, perScope } = this.#settings.limits;
    if ((this.#liveByUser.get(admission.userId)?.size ?? 0) >= perUser) return refusal('user-limit', perUser);
    if ((this.#liveByScope.get(admission.scope)?.size ?? 0) >= perScope)
      return refusal('scope-cap', perScope);
    const job: LocalJob = {
      id: randomUUID(),
      dataJson: admission.dataJson,
      owner: { userId: admission.userId, scope: admission.scope },
      priority: admission.priority,
      state: 'queued',
      attempts: 0,
      cancelRequested: false,
      enqueuedAt: Date.now(),
      delivered: false,
      seq: ++this.#seq,
    };
    this.#jobs.set(job.id, job);
    liveSet(this.#liveByUser, job.owner.userId).add(job.id);
    liveSet(this.#liveByScope, job.owner.scope).add(job.id);
    this.#insert(job);
    this.#dispatchSoon();
    return { ok: true, id: job.id };
  }

  async cancel(id: string): Promise<boolean> {
    const job = this.#jobs.get(id);
    if (!job || (job.state !== 'queued' && job.state !== 'running')) return false;
    job.cancelRequested = true;
    if (job.state === 'running') {
      job.run?.abort(cancellation());
      return true;
    }
    this.#finish(job, 'cancelled');
    return true;
  }

  async get(id: string): Promise<JobRecord<Data, Result, Progress> | undefined> {
    const job = this.#jobs.get(id);
    if (!job) return undefined;
    return {
      id: job.id,
      data: JSON.parse(job.dataJson),
      owner: { ...job.owner },
      priority: job.priority,
      state: job.state,
      attempts: job.attempts,
      ...(job.progressJson !== undefined && { progress: JSON.parse(job.progressJson) }),
      ...(job.result && {
        result: {
          value: JSON.parse(job.result.valueJson),
          blobs: Object.fromEntries([...job.result.blobs].map(([name, bytes]) => [name, Buffer.from(bytes)])),
        },
      }),
      ...(job.error && { error: { ...job.error } }),
      cancelRequested: job.cancelRequested,
      enqueuedAt: job.enqueuedAt,
      ...(job.startedAt !== undefined && { startedAt: job.startedAt }),
      ...(job.finishedAt !== undefined && { finishedAt: job.finishedAt }),
      ...(job.delivery && { delivery: structuredClone(job.delivery) }),
      delivered: job.delivered,
    };
  }

  async setDelivery(id: string, delivery: { [key: string]: Json }): Promise<boolean> {
    const job = this.#jobs.get(id);
    if (!job) return false;
    job.delivery = structuredClone(delivery);
    return true;
  }

  async claimDelivery(id: string): Promise<boolean> {
    const job = this.#jobs.get(id);
    if (!job || job.delivered) return false;
    job.delivered = true;
    return true;
  }

  async position(id: string): Promise<QueuePosition | undefined> {
    const job = this.#jobs.get(id);
    if (job?.state === 'running') return { position: 0, etaMs: 0 };
    if (job?.state !== 'queued') return undefined;
    const index = this.#pending.indexOf(job);
    // Waiting for a retry: it re-enters behind the queue as it stands now.
    const ahead = index >= 0 ? index : this.#pending.length;
    const now = Date.now();
    const elapsed = [...this.#jobs.values()]
      .filter((j) => j.state === 'running' && j.startedAt !== undefined)
      .map((j) => now - (j.startedAt ?? now));
    const runners = this.#runners.filter((w) => !w.closing).reduce((n, w) => n + w.concurrency, 0);
    const etaMs = estimateStartMs(ahead, elapsed, runners, typicalRunMs(this.#recentRunsMs));
    return etaMs === undefined ? { position: ahead + 1 } : { position: ahead + 1, etaMs };
  }

  on<T extends QueueEventType>(type: T, listener: QueueListener<Progress, T>): () => void {
    return this.#hub.on(type, listener);
  }

  /** Runs jobs in this process; call it once with the engine's processor (or more, to add runners). */
  startRunner(processor: JobProcessor<Data, Result, Progress>, options: RunnerOptions = {}): JobRunner {
    if (this.#closed) throw new Error('the queue is closed');
    const concurrency = options.concurrency ?? 1;
    if (!Number.isInteger(concurrency) || concurrency < 1)
      throw new TypeError('concurrency must be a positive integer');
    const runner: LocalRunner<Data, Result, Progress> = {
      processor,
      concurrency,
      running: new Set(),
      closing: false,
    };
    this.#runners.push(runner);
    this.#dispatchSoon();
    return {
      close: async () => {
        runner.closing = true;
        await Promise.allSettled([...runner.running]);
        this.#runners.splice(this.#runners.indexOf(runner), 1);
      },
    };
  }

  /** Stops everything: running jobs are aborted, queued ones dropped. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const job of this.#jobs.values()) {
      job.run?.abort(new DOMException('the queue is closing', 'AbortError'));
      clearTimeout(job.timer);
    }
    await Promise.allSettled(this.#runners.flatMap((w) => [...w.running]));
    this.#hub.clear();
  }

  #insert(job: LocalJob): void {
    const at = this.#pending.findIndex(
      (p) => p.priority > job.priority || (p.priority === job.priority && p.seq > job.seq),
    );
    this.#pending.splice(at < 0 ? this.#pending.length : at, 0, job);
  }

  #dispatchSoon(): void {
    if (this.#dispatchScheduled) return;
    this.#dispatchScheduled = true;
    // Later, not inside enqueue: callers see their job queued before it starts, as with Redis.
    setImmediate(() => {
      this.#dispatchScheduled = false;
      this.#dispatch();
    });
  }

  #dispatch(): void {
    while (!this.#closed && this.#pending.length > 0) {
      const runner = this.#runners.find((r) => !r.closing && r.running.size < r.concurrency);
      if (!runner) return;
      const job = this.#pending.shift()!;
      const run = this.#run(job, runner);
      runner.running.add(run);
      void run.finally(() => {
        runner.running.delete(run);
        this.#dispatchSoon();
      });
    }
  }

  async #run(job: LocalJob, runner: LocalRunner<Data, Result, Progress>): Promise<void> {
    const controller = new AbortController();
    const startedAt = Date.now();
    Object.assign(job, { state: 'running', startedAt, run: controller, progressJson: undefined });
    job.attempts += 1;
    this.#hub.emit({ type: 'started', id: job.id });
    const context: JobContext<Data, Progress> = {
      id: job.id,
      data: JSON.parse(job.dataJson),
      owner: { ...job.owner },
      attempt: job.attempts,
      signal: controller.signal,
      progress: async (value) => {
        const json = JSON.stringify(value);
        if (job.run !== controller || json === undefined) return;
        job.progressJson = json;
        this.#hub.emit({ type: 'progress', id: job.id, progress: JSON.parse(json) });
      },
    };
    let outcome: { output: CheckedOutput } | { error: unknown };
    try {
      outcome = { output: checkOutput(await runner.processor(context)) };
    } catch (error) {
      outcome = { error };
    }
    job.run = undefined;
    if (!this.#closed) this.#settle(job, outcome, Date.now() - startedAt);
  }

  #settle(job: LocalJob, outcome: { output: CheckedOutput } | { error: unknown }, runMs: number): void {
    if (job.cancelRequested) {
      this.#finish(job, 'cancelled');
    } else if ('output' in outcome) {
      const { valueJson, blobs } = outcome.output;
      job.result = {
        valueJson,
        blobs: new Map(blobs.map(([name, bytes]) => [name, Uint8Array.from(bytes)])),
      };
      this.#recentRunsMs.push(runMs);
      if (this.#recentRunsMs.length > RECENT_RUNS) this.#recentRunsMs.shift();
      this.#finish(job, 'completed');
    } else {
      job.error = failureOf(outcome.error);
      const final =
        job.error.kind === 'user' ||
        outcome.error instanceof InvalidOutputError ||
        job.attempts >= this.#retry.attempts;
      if (final) this.#finish(job, 'failed');
      else this.#retryLater(job);
    }
  }

  #retryLater(job: LocalJob): void {
    job.state = 'queued';
    job.timer = setTimeout(
      () => {
        job.timer = undefined;
        job.seq = ++this.#seq;
        this.#insert(job);
        this.#dispatch();
      },
      this.#retry.backoffMs * 2 ** (job.attempts - 1),
    );
  }

  #finish(job: LocalJob, state: 'completed' | 'failed' | 'cancelled'): void {
    const at = this.#pending.indexOf(job);
    if (at >= 0) this.#pending.splice(at, 1);
    clearTimeout(job.timer);
    job.state = state;
    job.finishedAt = Date.now();
    if (state !== 'failed') delete job.error;
    leave(this.#liveByUser, job.owner.userId, job.id);
    leave(this.#liveByScope, job.owner.scope, job.id);
    job.timer = setTimeout(() => this.#jobs.delete(job.id), this.#settings.resultTtlMs);
    job.timer.unref();
    if (state === 'failed') this.#hub.emit({ type: 'failed', id: job.id, error: { ...job.error! } });
    else this.#hub.emit({ type: state, id: job.id });
  }
}

function liveSet(byKey: Map<string, Set<string>>, key: string): Set<string> {
  const set = byKey.get(key) ?? new Set<string>();
  byKey.set(key, set);
  return set;
}

function leave(byKey: Map<string, Set<string>>, key: string, id: string): void {
  const set = byKey.get(key);
  set?.delete(id);
  if (set?.size === 0) byKey.delete(key);
}
