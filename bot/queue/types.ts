// The job queue's contract, shared by BullQueue (Redis) and LocalQueue (in-process).
// bot/queue/index.ts explains it; this file only states it.

/** What crosses the queue: job data, results and progress are stored as JSON. */
export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

/** Who a job counts against: a user, and the Discord server or Slack workspace it came from. */
export interface JobOwner {
  userId: string;
  scope: string;
}

export const PRIORITY = { first: 1, normal: 5, last: 10 } as const;

export interface EnqueueOptions extends JobOwner {
  /** An integer from 1 (runs first) to 10 (runs last); default 5. Equal priorities run in order. */
  priority?: number;
}

export interface Enqueued {
  ok: true;
  id: string;
}

/** A refusal: the user or the scope already has as many live jobs as allowed. */
export interface Refused {
  ok: false;
  reason: 'user-limit' | 'scope-cap';
  /** The limit that was reached. */
  limit: number;
  /** A sentence the user can act on. */
  message: string;
}

export type EnqueueOutcome = Enqueued | Refused;

export type JobState = 'queued' | 'running' | 'completed' | 'failed' | 'cancelled';

export interface JobFailure {
  message: string;
  /** `user`: the processor threw a UserError, the message is for the user. `internal`: anything else. */
  kind: 'user' | 'internal';
}

/** A processor's output as kept: a JSON value plus named binary blobs (PNG bytes, masks). */
export interface JobResult<Result> {
  value: Result;
  blobs: Record<string, Uint8Array>;
}

export interface JobRecord<Data, Result, Progress = Json> {
  id: string;
  data: Data;
  owner: JobOwner;
  priority: number;
  state: JobState;
  /** Runs started so far, counting retries and runs lost with a dead worker. */
  attempts: number;
  /** The latest progress of the current run. */
  progress?: Progress;
  /** When completed. */
  result?: JobResult<Result>;
  /** When failed; while queued for a retry, the error of the last attempt. */
  error?: JobFailure;
  /** cancel() was called; a running job stays `running` until its processor stops. */
  cancelRequested: boolean;
  enqueuedAt: number;
  startedAt?: number;
  finishedAt?: number;
  /** Where the bot shows this job (a chat's status message), as setDelivery stored it. */
  delivery?: { [key: string]: Json };
  /** claimDelivery was called: the result went (or is going) to the user. */
  delivered: boolean;
}

export interface QueuePosition {
  /** 0: running; 1: next to start; n: n−1 jobs start before it. */
  position: number;
  /** Estimated milliseconds until it starts, from recent run times; absent with no history. */
  etaMs?: number;
}

export type QueueEvent<Progress = Json> =
  | { type: 'started'; id: string }
  | { type: 'progress'; id: string; progress: Progress }
  | { type: 'completed'; id: string }
  | { type: 'failed'; id: string; error: JobFailure }
  | { type: 'cancelled'; id: string };

export type QueueEventType = QueueEvent['type'];

export type QueueListener<Progress, T extends QueueEventType> = (
  event: Extract<QueueEvent<Progress>, { type: T }>,
) => void;

/** The bot's side: enqueue, watch, cancel, look up. */
export interface JobQueue<Data, Result, Progress = Json> {
  /** Admits the job, or refuses it when the user's or scope's limit is reached. */
  enqueue(data: Data, options: EnqueueOptions): Promise<EnqueueOutcome>;
  /** Cancels a queued or running job; false when it is unknown or already finished. */
  cancel(id: string): Promise<boolean>;
  /** The job as stored, with its result once completed; undefined when unknown or expired. */
  get(id: string): Promise<JobRecord<Data, Result, Progress> | undefined>;
  /** Where a queued or running job stands; undefined once it has finished. */
  position(id: string): Promise<QueuePosition | undefined>;
  /**
   * Keeps where the bot shows this job with its record (for as long as the record), so a
   * restarted bot can go on updating the same message. False when the job is unknown.
   */
  setDelivery(id: string, delivery: { [key: string]: Json }): Promise<boolean>;
  /**
   * Takes the job's one delivery of its outcome: true for the first caller only, whichever
   * process it is in, so a bot that restarts, or hears an event twice, never answers twice.
   */
  claimDelivery(id: string): Promise<boolean>;
  /** Listens to every job's events; returns a function that stops listening. */
  on<T extends QueueEventType>(type: T, listener: QueueListener<Progress, T>): () => void;
  close(): Promise<void>;
}

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
