// /compose <text>: acknowledged at once (Slack waits 3 s at most), then parsed and queued;
// an empty text or `help` shows the syntax.

import type { AllMiddlewareArgs, SlackCommandMiddlewareArgs } from '@slack/bolt';
import { commandContext, commandPlace, typedText } from '../../context.ts';
import type { SlackDeps } from '../deps.ts';
import { guarded } from '../guard.ts';

export function composeCommand(deps: SlackDeps) {
  return async ({ command, ack, respond }: SlackCommandMiddlewareArgs & AllMiddlewareArgs): Promise<void> => {
    await ack();
    const place = commandPlace(command, respond);
    await guarded(deps, place, '/compose', async () => {
      const text = typedText(command.text).trim();
      if (text === '' || text.toLowerCase() === 'help') {
        await deps.delivery.send(deps.bot.commands.help(), place);
        return;
      }
      const outcome = await deps.bot.commands.compose(text, commandContext(command), {
        confirmAdmin: () => deps.admins.isAdmin(command.user_id),
      });
      await deps.delivery.deliver(outcome, place);
    });
  };
}
