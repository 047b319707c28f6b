// /help: the /compose language with examples and every option.

import type { AllMiddlewareArgs, SlackCommandMiddlewareArgs } from '@slack/bolt';
import { commandPlace } from '../../context.ts';
import type { SlackDeps } from '../deps.ts';
import { guarded } from '../guard.ts';

export function helpCommand(deps: SlackDeps) {
  return async ({ command, ack, respond }: SlackCommandMiddlewareArgs & AllMiddlewareArgs): Promise<void> => {
    await ack();
    const place = commandPlace(command, respond);
    await guarded(deps, place, '/help', async () => {
      await deps.delivery.send(deps.bot.commands.help(), place);
    });
  };
}
