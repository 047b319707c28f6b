// /loras paging buttons, its "show a card" select, and a card's Try it button.

import type { AllMiddlewareArgs, BlockAction, SlackActionMiddlewareArgs } from '@slack/bolt';
import { actionContext, actionPlace } from '../../context.ts';
import type { SlackDeps } from '../deps.ts';
import { guarded } from '../guard.ts';
import { actionIdOf, isBlockAction, selectedValue } from './selected.ts';

export const LORA_ACTION = /^(loras:\d|lora-card$|lora-try:)/;

export function loraAction(deps: SlackDeps) {
  return async ({
    ack,
    body,
    action,
    respond,
  }: SlackActionMiddlewareArgs & AllMiddlewareArgs): Promise<void> => {
    await ack();
    if (!isBlockAction(body)) return;
    const b = body as BlockAction;
    const a = action as BlockAction['actions'][number];
    const place = actionPlace(b, respond);
    await guarded(deps, place, 'LoRA list', async () => {
      const outcome = await deps.bot.commands.action(
        actionIdOf(a),
        actionContext(b, false),
        selectedValue(a),
      );
      await deps.delivery.deliver(outcome, place);
    });
  };
}
