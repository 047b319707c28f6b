// The upload modal's Add: file checks that need no download answer in the modal; then the
// modal closes, the file is downloaded (size-capped) and added, and the outcome comes back
// as an ephemeral message in the channel /lora add was run in.

import type { AllMiddlewareArgs, SlackViewMiddlewareArgs } from '@slack/bolt';
import { loraAddedReply } from '../../../../commands/loras.ts';
import { userErrorReply } from '../../../../commands/reply.ts';
import { UploadTooLarge } from '../../../library/download.ts';
import type { Place } from '../../context.ts';
import {
  downloadSlackFile,
  isSlackFileUrl,
  LORA_ADD_FIELDS,
  loraAddChannel,
  readLoraUpload,
} from '../../lora-add.ts';
import type { SlackDeps } from '../deps.ts';

export function loraAddSubmission(deps: SlackDeps) {
  return async ({ ack, body, view }: SlackViewMiddlewareArgs & AllMiddlewareArgs): Promise<void> => {
    const user = body.user.id;
    // Checked again here: the modal may have been opened before the user lost admin rights.
    if (!(await deps.admins.isAdmin(user))) {
      await ack({
        response_action: 'errors',
        errors: { [LORA_ADD_FIELDS.file]: 'Only workspace admins and owners can add LoRAs.' },
      });
      return;
    }
    const maxBytes = deps.bot.config.limits.loraUploadMaxMb * 1024 * 1024;
    const read = readLoraUpload(view, maxBytes);
    if (!read.ok) {
      await ack({ response_action: 'errors', errors: read.errors });
      return;
    }
    const { upload } = read;
    if (!isSlackFileUrl(upload.url, deps.slack.apiUrl)) {
      await ack({
        response_action: 'errors',
        errors: { [LORA_ADD_FIELDS.file]: 'That file is not on Slack.' },
      });
      return;
    }
    await ack();
    const place: Place = { channel: loraAddChannel(view) ?? '', userId: user };
    let bytes: Uint8Array;
    try {
      bytes = await downloadSlackFile(upload.url, deps.slack.botToken, maxBytes);
    } catch (e) {
      deps.log.warn(`LoRA upload by ${user}: ${(e as Error).message}`);
      const reason = e instanceof UploadTooLarge ? e.message : 'it could not be downloaded from Slack';
      await deps.delivery.send(
        userErrorReply(`${upload.fileName} was not added: ${reason}.`, 'Try again.'),
        place,
      );
      return;
    }
    const result = await deps.bot.library.add(upload.name, bytes, { replace: upload.replace });
    if (!result.ok) {
      await deps.delivery.send(
        userErrorReply(result.message, 'Fix the file or the name and run `/lora add` again.'),
        place,
      );
      return;
    }
    deps.log.info(`LoRA '${result.entry.name}' ${result.replaced ? 'replaced' : 'added'} by ${user}`);
    await deps.delivery.send(loraAddedReply(result.entry, result.replaced), place);
  };
}
