// /loras [search] [page]: the library 25 at a time, with a select to open a card and page buttons.

import type { AllMiddlewareArgs, SlackCommandMiddlewareArgs } from '@slack/bolt';
import { commandPlace, typedText } from '../../context.ts';
import type { SlackDeps } from '../deps.ts';
import { guarded } from '../guard.ts';

/** "penguin 2" → search "penguin", page index 1; a lone number is a page. */
export function readLorasText(text: string): { query: string; page: number } {
  const words = text.trim().split(/\s+/).filter(Boolean);
  const last = words.at(-1);
  if (last !== undefined && /^[1-9]\d{0,3}$/.test(last))
    return { query: words.slice(0, -1).join(' '), page: Number(last) - 1 };
  return { query: words.join(' '), page: 0 };
}

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
