// /lora <name>: one LoRA's card. /lora add: the upload modal, for workspace admins only
// (users.info says who is one; the submission is checked again).

import type { AllMiddlewareArgs, SlackCommandMiddlewareArgs } from '@slack/bolt';
import { commandPlace, typedText } from '../../context.ts';
import { adminOnlyReply, loraAddView } from '../../lora-add.ts';
import type { SlackDeps } from '../deps.ts';
import { guarded } from '../guard.ts';

export function loraCommand(deps: SlackDeps) {
  return async ({
    command,
    ack,
    respond,
    client,
  }: SlackCommandMiddlewareArgs & AllMiddlewareArgs): Promise<void> => {
    await ack();
    const place = commandPlace(command, respond);
    const text = typedText(command.text).trim();
    await guarded(deps, place, '/lora', async () => {
      if (text.toLowerCase() !== 'add') {
        await deps.delivery.send(await deps.bot.commands.lora(text), place);
        return;
      }
      if (!(await deps.admins.isAdmin(command.user_id))) {
        await deps.delivery.send(adminOnlyReply(), place);
        return;
      }
      const maxBytes = deps.bot.config.limits.loraUploadMaxMb * 1024 * 1024;
      await client.views.open({
        trigger_id: command.trigger_id,
        view: loraAddView(command.channel_id, maxBytes),
      });
    });
  };
}
