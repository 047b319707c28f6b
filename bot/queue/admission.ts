// Checks on what enters the queue and on what a processor hands back, and the refusal a user
// sees when a limit is reached: shared so both queues accept and refuse exactly alike.
import { InvalidOutputError } from './errors.ts';
import { type EnqueueOptions, type JobOutput, PRIORITY, type Refused } from './types.ts';

export interface Admission {
  userId: string;
  scope: string;
  priority: number;
  /** The data as stored. */
  dataJson: string;
}

/** Throws TypeError for a caller's mistake (not a user's): missing owner, bad priority, data that is not JSON. */
export function admit(data: unknown, options: EnqueueOptions): Admission {
  const { userId, scope, priority = PRIORITY.normal } = options;
  if (typeof userId !== 'string' || userId === '') throw new TypeError('enqueue needs a userId');
  if (typeof scope !== 'string' || scope === '') throw new TypeError('enqueue needs a scope');
  if (!Number.isInteger(priority) || priority < PRIORITY.first || priority > PRIORITY.last) {
    throw new TypeError(
      `priority must be an integer from ${PRIORITY.first} to ${PRIORITY.last}, got ${priority}`,
    );
  }
  const dataJson = JSON.stringify(data);
  if (dataJson === undefined) throw new TypeError('job data must be JSON-serialisable');
  return { userId, scope, priority, dataJson };
}

export function refusal(reason: Refused['reason'], limit: number): Refused {
  const jobs = limit === 1 ? 'a job' : `${limit} jobs`;
  const message =
    reason === 'user-limit'
      ? `You already have ${jobs} queued or running. Wait for ${limit === 1 ? 'it' : 'one'} to finish, or cancel it.`
      : `This server or workspace already has ${jobs} queued or running. Try again when the queue is shorter.`;
  return { ok: false, reason, limit, message };
}

export interface CheckedOutput {
  valueJson: string;
  blobs: [name: string, bytes: Uint8Array][];
}

const BLOB_NAME = /^[A-Za-z0-9._-]{1,100}$/;

export function checkOutput(output: JobOutput<unknown> | undefined): CheckedOutput {
  if (typeof output !== 'object' || output === null || !('value' in output)) {
    throw new InvalidOutputError('the processor must return { value, blobs? }');
  }
  const valueJson = JSON.stringify(output.value);
  if (valueJson === undefined) throw new InvalidOutputError('the result value must be JSON-serialisable');
  const blobs = Object.entries(output.blobs ?? {});
  for (const [name, bytes] of blobs) {
    if (!BLOB_NAME.test(name)) throw new InvalidOutputError(`bad blob name ${JSON.stringify(name)}`);
    if (!(bytes instanceof Uint8Array)) throw new InvalidOutputError(`blob ${name} is not a Uint8Array`);
  }
  return { valueJson, blobs };
}
