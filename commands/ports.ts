// What the commands need from the rest of the bot, stated here so the commands own it: the
// job queue, the LoRA library as users see it, the recipe a picture carries and the sheet that
// shows pictures side by side. bot/ implements these (BullQueue and LocalQueue, LoraLibrary,
// render/recipe.ts, render/compare.ts); nothing here imports bot/.

import type { LoraCatalog } from './compose/resolve.ts';
import type { ImageMime } from './reply.ts';

export type { ImageMime } from './reply.ts';

// ── The job queue ────────────────────────────────────────────────────────────────────────

/** What crosses the queue: job data, results and progress are stored as JSON. */
export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

/** Who a job counts against: a user, and the Discord server or Slack workspace it came from. */
export interface JobOwner {
  userId: string;
  scope: string;
}

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

// ── The LoRA library ─────────────────────────────────────────────────────────────────────

export type LoraCheck =
  /** no model is configured, so nothing can be checked against it */
  | { state: 'unchecked' }
  /** waiting for the background check */
  | { state: 'pending' }
  | {
      state: 'ok';
      format: 'kohya' | 'peft' | 'locon';
      /** layers of the model the file adapts */
      layers: number;
      /** modules of the file that match no layer of the model (ignored when composing) */
      unmatched: number;
      rank: number;
    }
  | { state: 'unusable'; reason: string };

/** Where the trigger words came from, most trusted first. */
export type TriggerSource = 'sidecar' | 'metadata' | 'name';

/** One LoRA as users see it on its card and in /loras. */
export interface LoraView {
  /** the slug users type: lowercase a–z, 0–9 and '-', unique in the library */
  readonly name: string;
  readonly displayName: string;
  /** the file name in the library folder */
  readonly file: string;
  readonly sizeBytes: number;
  readonly triggers: readonly string[];
  readonly triggerSource: TriggerSource;
  /** training tags (most frequent first), then the sidecar's tags */
  readonly tags: readonly string[];
  readonly rank: number | undefined;
  /** undefined until the background check or hash has read the file */
  readonly sha256: string | undefined;
  readonly check: LoraCheck;
  /** false when the check (or the header alone) rules it out; never offered to /compose then */
  readonly usable: boolean;
  /** the base model the sidecar or metadata claims, unverified */
  readonly baseModelClaim: string | undefined;
  /** the ss_* and modelspec.* metadata */
  readonly metadata: Readonly<Record<string, string>>;
  readonly description: string | undefined;
  readonly source: string | undefined;
  readonly author: string | undefined;
  readonly licence: string | undefined;
  /** things the operator may want to fix, shown on the card */
  readonly notes: readonly string[];
}

export type LoraPreview =
  | { ok: true; image: { data: Uint8Array; mime: ImageMime; filename: string } }
  | { ok: false; problem: string };

/** The LoRA library as the commands read it. */
export interface LoraLibraryView extends LoraCatalog {
  /** Every LoRA, usable or not, sorted by name. */
  list(): readonly LoraView[];
  /** LoRAs matching `query` by name, display name, trigger or tag, best first. */
  search(query: string): readonly LoraView[];
  /** The LoRA called `name` (any case, with or without < >; a display name works too). */
  get(name: string): LoraView | undefined;
  /** The LoRA's entry once any check still waiting for it is done. */
  check(name: string): Promise<LoraView | undefined>;
  /** Up to a few names near a mistyped one, best first. */
  closest(name: string): string[];
  /** The LoRA's preview picture, if it has one and it fits in `maxBytes`. */
  preview(name: string, maxBytes?: number): Promise<LoraPreview | undefined>;
}

// ── The recipe a picture carries ─────────────────────────────────────────────────────────

/** What remix reads of a recipe: the /compose command, who made it and the LoRAs' hashes. */
export interface PictureRecipe {
  readonly command: string;
  readonly generator: string;
  readonly loras: readonly { readonly name: string; readonly hash?: string }[];
}

/** What an uploaded picture says about how it was made. */
export type RecipeReading<R extends PictureRecipe = PictureRecipe> =
  | { readonly kind: 'recipe'; readonly recipe: R }
  /** A picture from another tool: its A1111 text when it has one. */
  | { readonly kind: 'foreign'; readonly parameters?: string }
  | { readonly kind: 'not-png' };

export type RecipeReader = (picture: Uint8Array) => RecipeReading;

// ── Pictures side by side ────────────────────────────────────────────────────────────────

/** One picture of a comparison, under its title. */
export interface TitledPicture {
  readonly title: string;
  readonly bytes: Uint8Array;
}

/** A picture drawn for a reply, encoded. */
export interface DrawnPicture {
  readonly bytes: Uint8Array;
  readonly mime: ImageMime;
  /** the file extension that goes with `mime` */
  readonly ext: string;
}

/** Draws already-encoded pictures in one row, each under its title; rejects pictures it cannot read. */
export type ComparisonDrawer = (pictures: readonly TitledPicture[]) => Promise<DrawnPicture>;
