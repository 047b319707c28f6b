// Failures as the queue sorts them: a UserError fails the job at once with a message for the
// user; anything else is transient (retried) and reported as internal.
import type { JobFailure } from './types.ts';

/** An error the user caused (unusable LoRA file, impossible request); never retried. */
export class UserError extends Error {
  override name = 'UserError';
}

/** Also true for errors rebuilt across a thread or process boundary, which keep only the name. */
export function isUserError(error: unknown): boolean {
  return error instanceof UserError || (error instanceof Error && error.name === 'UserError');
}

export function failureOf(error: unknown): JobFailure {
  const message = error instanceof Error ? error.message : String(error);
  return { message: message || 'unknown error', kind: isUserError(error) ? 'user' : 'internal' };
}

/** The processor returned something the queue cannot store: a bug, so not retried. */
export class InvalidOutputError extends Error {
  override name = 'InvalidOutputError';
}

/** The reason a cancelled job's signal carries, shaped like AbortSignal.abort()'s own. */
export function cancellation(): DOMException {
  return new DOMException('the job was cancelled', 'AbortError');
}
