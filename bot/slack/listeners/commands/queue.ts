// /queue: the user's recent jobs and where they stand.

import type { AllMiddlewareArgs, SlackCommandMiddlewareArgs } from '@slack/bolt';
import { commandContext, commandPlace } from '../../context.ts';
import type { SlackDeps } from '../deps.ts';
import { guarded } from '../guard.ts';

export function queueCommand(deps: SlackDeps) {
  return async ({ command, ack, respond }: SlackCommandMiddlewareArgs & AllMiddlewareArgs): Promise<void> => {
    await ack();
    const place = commandPlace(command, respond);
    await guarded(deps, place, '/queue', async () => {
      await deps.delivery.send(await deps.bot.commands.queueStatus(commandContext(command)), place);
    });
  };
}
