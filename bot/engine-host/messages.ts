// What the engine thread and its client say to each other, and how errors are sorted into
// the user's fault, cancellation, or the engine's: the thread sends an error's kind as data,
// and errorFromThread makes it an error again on the other side.

import type { ComposeJobProgress } from '../../commands/jobs.ts';
import type { LoadTimings } from '../../engine/clora/engine.ts';
import type { CompositionSpec } from '../../engine/clora/spec.ts';
import { CancelledError, InputError } from '../../engine/errors.ts';
import { UserError } from '../queue/errors.ts';

export type ErrorKind = 'user' | 'internal' | 'cancelled';

export type ThreadRequest =
  | { type: 'compose'; id: number; spec: CompositionSpec; maxBytes: number; command?: string }
  | { type: 'cancel'; id: number }
  | { type: 'close' };

/** What the thread reports as a composition runs: a job's progress, as the queue carries it. */
export type ThreadProgress = ComposeJobProgress;

export interface CompositionSummary {
  seed: number;
  prompts: string[];
  width: number;
  height: number;
  method: string;
  timings: Record<string, number>;
  loss?: { first: number; last: number; updates: number };
  maskShares?: { name: string; share: number }[];
}

export type ThreadReply =
  /** defaultSize: the side a request without a size gets (the model's own, capped by MAX_SIZE) */
  | { type: 'ready'; load: LoadTimings; defaultSize: number }
  | { type: 'load-failed'; kind: ErrorKind; message: string }
  | { type: 'progress'; id: number; progress: ThreadProgress }
  | {
      type: 'done';
      id: number;
      summary: CompositionSummary;
      pictures: Record<string, { bytes: Uint8Array; mime: string }>;
    }
  | { type: 'failed'; id: number; kind: ErrorKind; message: string };

/** On the engine's thread: an error as data. The engine's InputErrors tell the user what to change. */
export function classifyError(e: unknown): { kind: ErrorKind; message: string } {
  const err = e instanceof Error ? e : new Error(String(e));
  if (err instanceof CancelledError) return { kind: 'cancelled', message: err.message };
  return { kind: err instanceof InputError ? 'user' : 'internal', message: err.message };
}

/** The engine's fault, or a cancellation, as the client reports it. */
export class EngineJobError extends Error {
  override name = 'EngineJobError';
  constructor(
    readonly kind: ErrorKind,
    message: string,
  ) {
    super(message);
  }
}

/** On the client's side: the error the thread reported, a UserError (for the queue) when the user caused it. */
export function errorFromThread(kind: ErrorKind, message: string): Error {
  return kind === 'user' ? new UserError(message) : new EngineJobError(kind, message);
}
