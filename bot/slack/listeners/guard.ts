// Runs a listener's work behind the per-user rate limit, and turns anything it throws into an
// ephemeral apology instead of a silent failure.

import { userErrorReply } from '../../../commands/reply.ts';
import type { Place } from '../context.ts';
import type { SlackDeps } from './deps.ts';

export async function guarded(
  deps: SlackDeps,
  place: Place,
  what: string,
  work: () => Promise<void>,
): Promise<void> {
  const gate = deps.limiter.take(place.userId);
  if (!gate.ok) {
    await deps.delivery.ephemeral(gate.reply, place);
    return;
  }
  try {
    await work();
  } catch (e) {
    deps.log.error(`${what} by ${place.userId} failed`, e);
    await deps.delivery.ephemeral(
      userErrorReply(
        'Something went wrong on the bot’s side.',
        'Try again; if it keeps failing, tell the bot’s operator.',
      ),
      place,
    );
  }
}
