// What the engine thread and its client say to each other, and how errors are sorted into
// the user's fault, cancellation, or the engine's.

import type { ComposeJobProgress } from '../../commands/jobs.ts';
import type { LoadTimings } from '../../engine/clora/engine.ts';
import type { CompositionSpec } from '../../engine/clora/spec.ts';

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

// Errors whose message tells the user what to change: bad requests, bad LoRA or model files.
const USER_ERRORS = new Set([
  'SpecError',
  'LoraError',
  'WeightsError',
  'TokenizerFileError',
  'SchedulerConfigError',
]);

export function classifyError(e: unknown): { kind: ErrorKind; message: string } {
  const err = e instanceof Error ? e : new Error(String(e));
  const name = err.name !== 'Error' ? err.name : err.constructor?.name;
  if (name === 'CancelledError') return { kind: 'cancelled', message: err.message };
  return {
    kind: USER_ERRORS.has(name) || USER_ERRORS.has(err.constructor?.name) ? 'user' : 'internal',
    message: err.message,
  };
}
