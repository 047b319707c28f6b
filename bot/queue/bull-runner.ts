// The worker's side of the Redis queue (`npm run worker`, on any number of hosts): takes jobs
// from BullMQ, runs the processor, settles the job's record, and aborts a running job when the
// bot publishes its id on the cancel channel.
import { type Job, MetricsTime, UnrecoverableError, WaitingError, Worker } from 'bullmq';
import { type CheckedOutput, checkOutput } from './admission.ts';
import { type BullConnection, checkRedis, names, openRedis } from './bull-connection.ts';
import { cancellation, failureOf, InvalidOutputError } from './errors.ts';
import { RECENT_RUNS } from './estimate.ts';
import { JobStore, type Settlement } from './job-store.ts';
import type { JobProcessor, JobRunner, Json, RunnerOptions } from './types.ts';

export interface BullRunnerOptions extends BullConnection, RunnerOptions {
  /** A job whose worker stops renewing this lock (it died) is run again elsewhere; default 30 s. */
  lockDurationMs?: number;
  /** How often this worker looks for such jobs; default 30 s. */
  stalledIntervalMs?: number;
}

/** The reason a job's signal carries when a stopping worker hands it back to the queue. */
const HAND_BACK = new DOMException(
  'the worker is shutting down; the job goes back to the queue',
  'AbortError',
);

export async function startBullRunner<Data, Result, Progress = Json>(
  processor: JobProcessor<Data, Result, Progress>,
  options: BullRunnerOptions,
): Promise<JobRunner> {
  await checkRedis(options);
  const { queueName, prefix } = names(options);
  const redis = openRedis(options, true);
  const subscriber = openRedis(options, true);
  /** Cancellation of the jobs running here, by id. */
  const running = new Map<string, AbortController>();
  /** Set when a graceful close ran out of time: running jobs go back to the queue, not to failed. */
  let handingBack = false;

  const worker = new Worker(
    queueName,
    // Three parameters: BullMQ passes its own abort signal only to processors that take one.
    (job: Job, token?: string, signal?: AbortSignal) => run(job, token, signal),
    {
      connection: redis,
      prefix,
      concurrency: options.concurrency ?? 1,
      lockDuration: options.lockDurationMs ?? 30_000,
      stalledInterval: options.stalledIntervalMs ?? 30_000,
      // Per-minute completed/failed counts, which the queue's Prometheus export reports.
      metrics: { maxDataPoints: MetricsTime.ONE_WEEK },
      autorun: false,
    },
  );
  worker.on('error', (error) => options.onError?.(error));
  const store = new JobStore(redis, worker.toKey('clora'), RECENT_RUNS);

  async function run(
    job: Job,
    token: string | undefined,
    bullSignal: AbortSignal | undefined,
  ): Promise<null> {
    const id = job.id!;
    const attempt = job.attemptsStarted;
    // Listen before reading the record: a cancel published meanwhile still reaches this run.
    const own = new AbortController();
    running.set(id, own);
    const begun = await store.start(id, attempt).catch((error: unknown) => {
      running.delete(id);
      throw error;
    });
    if (begun.kind !== 'run') running.delete(id);
    if (begun.kind === 'missing') throw new UnrecoverableError('the job record has expired or was lost');
    if (begun.kind === 'final') return outcome(begun.state, 'the job had already finished');
    if (begun.kind === 'cancel') return outcome(await store.settle(id, { target: 'cancelled' }), '');

    const signal = bullSignal ? AbortSignal.any([own.signal, bullSignal]) : own.signal;
    const startedAt = Date.now();
    let result: { output: CheckedOutput } | { error: unknown };
    try {
      const output = await processor({
        id,
        data: JSON.parse(begun.dataJson),
        owner: { userId: begun.userId, scope: begun.scope },
        attempt,
        signal,
        progress: async (value) => {
          const json = JSON.stringify(value);
          if (json === undefined || own.signal.aborted) return;
          try {
            const [stop] = await Promise.all([
              store.progress(id, json),
              job.updateProgress(JSON.parse(json)),
            ]);
            if (stop) own.abort(cancellation());
          } catch {
            // Progress is best effort; the run goes on.
          }
        },
      });
      result = { output: checkOutput(output) };
    } catch (error) {
      result = { error };
    } finally {
      running.delete(id);
    }

    if ('error' in result && handingBack && own.signal.reason === HAND_BACK) {
      // BullMQ's way of returning an active job to the wait list: no attempt is used up.
      await store.settle(id, { target: 'queued', error: { message: HAND_BACK.message, kind: 'internal' } });
      await job.moveToWait(token);
      throw new WaitingError();
    }
    let settlement: Settlement;
    if ('output' in result) {
      settlement = { target: 'completed', runMs: Date.now() - startedAt, ...result.output };
    } else {
      const error = failureOf(result.error);
      const final =
        error.kind === 'user' ||
        result.error instanceof InvalidOutputError ||
        job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
      settlement = { target: final ? 'failed' : 'queued', error };
    }
    const state = await store.settle(id, settlement);
    const message = 'error' in settlement ? settlement.error.message : '';
    if (state === 'queued') {
      // BullMQ retries it after its backoff.
      const thrown = 'error' in result ? result.error : undefined;
      throw thrown instanceof Error ? thrown : new Error(message);
    }
    return outcome(state, message);
  }

  /** A finished record ends the BullMQ job the same way: completed, or failed without retry. */
  async function outcome(state: string, message: string): Promise<null> {
    if (state === 'completed') return null;
    if (state === 'cancelled') throw new UnrecoverableError('the job was cancelled');
    if (state === 'failed') throw new UnrecoverableError(message || 'the job failed');
    throw new UnrecoverableError(`the job record is ${state}`);
  }

  subscriber.on('message', (_channel: string, id: string) => running.get(id)?.abort(cancellation()));
  await subscriber.subscribe(store.cancelChannel);
  void worker.run().catch((error: Error) => options.onError?.(error));
  await worker.waitUntilReady();

  return {
    close: async (options = {}) => {
      // BullMQ's close waits for the running jobs; past the grace they are handed back instead.
      const closing = worker.close();
      if (options.graceMs !== undefined && running.size > 0) {
        let timer: NodeJS.Timeout | undefined;
        const late = new Promise<'late'>((resolve) => {
          timer = setTimeout(() => resolve('late'), options.graceMs);
        });
        if ((await Promise.race([closing, late])) === 'late') {
          handingBack = true;
          for (const controller of running.values()) controller.abort(HAND_BACK);
        }
        clearTimeout(timer);
      }
      await closing;
      await Promise.all([subscriber.quit(), redis.quit()]).catch(() => undefined);
    },
  };
}
