// The job queue between the chat adapters and the engine.
//
// Bot side, a JobQueue<Data, Result, Progress>:
//   enqueue(data, { userId, scope, priority? })  → { ok: true, id } or a Refused value
//       ({ ok: false, reason: 'user-limit' | 'scope-cap', limit, message }) — never an exception
//       for a full queue. `scope` is the Discord server or Slack workspace. Priority 1 runs first,
//       10 last, default 5; equal priorities run in order of arrival.
//   cancel(id)    → true if it was queued (dropped now) or running (its signal fires; it ends
//                   `cancelled` when the processor stops); false if unknown or finished.
//   get(id)       → JobRecord: data, owner, state (queued | running | completed | failed |
//                   cancelled), attempts, progress, result { value, blobs }, error { message,
//                   kind: 'user' | 'internal' }; kept for resultTtlMs after it finishes, so a
//                   "rerun" button can read the request back, also after a bot restart.
//   position(id)  → { position, etaMs? }: 0 running, 1 next; the ETA comes from recent run times.
//   on(type, fn)  → 'started' | 'progress' | 'completed' | 'failed' | 'cancelled'; returns an
//                   unsubscribe function. 'failed' is final (after retries); 'started' fires per run.
//   close()
//
// Runner side, a JobProcessor: async ({ id, data, owner, attempt, signal, progress }) =>
// { value, blobs? }. Throw UserError for what the user caused (fails at once, message shown
// to the user); any other error is retried with exponential backoff (settings.retry, default
// 3 runs from 2 s). Blobs are named byte arrays (PNG, masks), stored beside the record.
//
// Two implementations, one behaviour (test/integration/queue.test.ts runs both):
// - BullQueue.open({ redisUrl, ...settings }) with startBullRunner(processor, { redisUrl,
//   concurrency }) in any number of worker processes (`npm run worker`). BullMQ schedules;
//   a worker that dies mid-job has its job run again by another after the lock lapses; a job
//   is settled once, so none completes twice. Records and blobs live in Redis with a TTL. Run
//   Redis with persistence (appendonly) if queued jobs must survive a Redis restart; the
//   clients reconnect and carry on by themselves.
// - LocalQueue (no REDIS_URL): the same in this process, with localQueue.startRunner(processor).
//   Nothing persists: a restart forgets every job and result.
import type { QueueConfig } from '../../config/index.ts';
import { BullQueue } from './bull-queue.ts';
import { LocalQueue } from './local-queue.ts';
import type { JobProcessor, JobQueue, JobRunner, Json, QueueSettings, RunnerOptions } from './types.ts';

export type { BullConnection } from './bull-connection.ts';
export { DEFAULT_PREFIX, DEFAULT_QUEUE_NAME } from './bull-connection.ts';
export type { BullQueueOptions } from './bull-queue.ts';
export { BullQueue } from './bull-queue.ts';
export type { BullRunnerOptions } from './bull-runner.ts';
export { startBullRunner } from './bull-runner.ts';
export { isUserError, UserError } from './errors.ts';
export { LocalQueue } from './local-queue.ts';
export * from './types.ts';

/** Queue settings from the loaded configuration. */
export function queueSettings(config: QueueConfig): QueueSettings {
  return {
    limits: { perUser: config.perUserLimit, perScope: config.perScopeCap },
    resultTtlMs: config.resultTtlSeconds * 1000,
  };
}

/** A bot's queue as opened: the queue, the runner of its jobs in this process, and the start of its events. */
export interface OpenedJobQueue<Data, Result, Progress = Json> {
  queue: JobQueue<Data, Result, Progress>;
  /** runs jobs in this process: no REDIS_URL, and a processor to run them */
  runner?: JobRunner;
  /** lets the queue's events flow; a queue on Redis holds them until the adapters listen */
  listen(): void;
}

export interface OpenJobQueueOptions<Data, Result, Progress> extends RunnerOptions {
  /** runs the jobs when the queue is in this process; none: they wait */
  localProcessor?: JobProcessor<Data, Result, Progress>;
  /** BullMQ's queue name, for bots and workers that share a Redis with others */
  queueName?: string;
  /** names this bot for event replay after a restart (BullQueueOptions.consumer) */
  consumer?: string;
  onError?: (error: Error) => void;
}

/**
 * The bot's queue: on Redis when REDIS_URL is set (workers run the jobs elsewhere), else in
 * this process, running `localProcessor` here.
 */
export async function openJobQueue<Data, Result, Progress = Json>(
  config: QueueConfig,
  options: OpenJobQueueOptions<Data, Result, Progress> = {},
): Promise<OpenedJobQueue<Data, Result, Progress>> {
  const settings = queueSettings(config);
  if (config.redisUrl !== undefined) {
    const queue = await BullQueue.open<Data, Result, Progress>({
      redisUrl: config.redisUrl,
      ...(options.queueName ? { queueName: options.queueName } : {}),
      holdEvents: true,
      consumer: options.consumer,
      onError: options.onError,
      ...settings,
    });
    return { queue, listen: () => queue.listen() };
  }
  const queue = new LocalQueue<Data, Result, Progress>(settings);
  const runner = options.localProcessor
    ? queue.startRunner(options.localProcessor, { concurrency: options.concurrency })
    : undefined;
  return { queue, runner, listen: () => {} };
}
