// /loras [search] [page]: the library 25 at a time, with a select to open a card and page buttons.

import type { AllMiddlewareArgs, SlackCommandMiddlewareArgs } from '@slack/bolt';
import { readLorasText } from '../../../../commands/loras.ts';
import { commandPlace, typedText } from '../../context.ts';
import type { SlackDeps } from '../deps.ts';
import { guarded } from '../guard.ts';

export function lorasCommand(deps: SlackDeps) {
  return async ({ command, ack, respond }: SlackCommandMiddlewareArgs & AllMiddlewareArgs): Promise<void> => {
    await ack();
    const place = commandPlace(command, respond);
    await guarded(deps, place, '/loras', async () => {
      const { query, page } = readLorasText(typedText(command.text));
      await deps.delivery.send(deps.bot.commands.loras(query, page), place);
    });
  };
}
