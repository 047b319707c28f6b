// The job queue's contract, shared by BullQueue (Redis) and LocalQueue (in-process).
// bot/queue/index.ts explains it; this file only states it. The side the commands use
// (enqueue, look up, watch) is theirs, in commands/ports.ts; the worker's side is here.

import type { JobOwner, Json } from '../../commands/ports.ts';

export type {
  Enqueued,
  EnqueueOptions,
  EnqueueOutcome,
  JobFailure,
  JobOwner,
  JobQueue,
  JobRecord,
  JobResult,
  JobState,
  Json,
  QueueEvent,
  QueueEventType,
  QueueListener,
  QueuePosition,
  Refused,
} from '../../commands/ports.ts';

export const PRIORITY = { first: 1, normal: 5, last: 10 } as const;

/** What a processor gets for one run of one job. */
export interface JobContext<Data, Progress = Json> {
  id: string;
  data: Data;
  owner: JobOwner;
  /** 1 on the first run. */
  attempt: number;
  /** Fires when the job is cancelled; the processor should stop and throw. */
  signal: AbortSignal;
  /** Reports progress to listeners; never rejects (progress is best effort). */
  progress(value: Progress): Promise<void>;
}

export interface JobOutput<Result> {
  value: Result;
  /** Names: letters, digits, `.`, `_`, `-`. */
  blobs?: Record<string, Uint8Array>;
}

/**
 * Runs one job. Throw a UserError for failures the user caused (no retry); any other error
 * is taken as transient and retried with backoff until the attempts run out.
 */
export type JobProcessor<Data, Result, Progress = Json> = (
  job: JobContext<Data, Progress>,
) => Promise<JobOutput<Result>>;

/** How a job runner (what takes jobs off a queue and hands each to the processor) runs them. */
export interface RunnerOptions {
  /** Jobs run at once by this runner; default 1. */
  concurrency?: number;
}

export interface JobRunner {
  /**
   * Stops taking jobs and waits for the running ones to finish; with `graceMs`, those still
   * running after it are stopped and handed back to the queue for another runner.
   */
  close(options?: { graceMs?: number }): Promise<void>;
}

/** Limits and retention, set where jobs are enqueued. */
export interface QueueSettings {
  limits: {
    /** Live (queued or running) jobs per user. */
    perUser: number;
    /** Live jobs per scope. */
    perScope: number;
  };
  /** How long a finished job (data, result, blobs) stays retrievable. */
  resultTtlMs: number;
  /** Runs per job for transient failures, and the first retry's delay (doubling after). */
  retry?: { attempts: number; backoffMs: number };
}

export const DEFAULT_RETRY = { attempts: 3, backoffMs: 2000 } as const;
