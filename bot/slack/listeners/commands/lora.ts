// /lora <name>: one LoRA's card. /lora add: the upload modal, for workspace admins only
// (users.info says who is one; the submission is checked again); /lora add civitai:<id> [name]
// [--replace] (or a civitai.com link, or an AIR) imports from Civitai instead.

import type { AllMiddlewareArgs, SlackCommandMiddlewareArgs } from '@slack/bolt';
import { addFromCivitai, civitaiClient, readAddText } from '../../../civitai/index.ts';
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
      const fromCivitai = /^add\s/i.test(text) ? readAddText(text.slice(4)) : undefined;
      if (fromCivitai) {
        if (!(await deps.admins.isAdmin(command.user_id))) {
          await deps.delivery.send(adminOnlyReply(), place);
          return;
        }
        const maxBytes = deps.bot.config.limits.loraUploadMaxMb * 1024 * 1024;
        const outcome = await addFromCivitai(
          fromCivitai,
          civitaiClient(deps.bot.config),
          deps.bot.library,
          maxBytes,
        );
        if (outcome.added) deps.log.info(`LoRA '${outcome.added}' added from Civitai by ${command.user_id}`);
        await deps.delivery.send(outcome.reply, place);
        return;
      }
      if (text.toLowerCase() !== 'add') {
        const card = await deps.bot.commands.lora(text, {
          confirmAdmin: () => deps.admins.isAdmin(command.user_id),
        });
        await deps.delivery.send(card, place);
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
