// The "Remix with clora" message shortcut: run on a message holding a picture the bot made, it answers
// privately with the /compose command the picture carries, to edit and run.

import type { AllMiddlewareArgs, MessageShortcut, SlackShortcutMiddlewareArgs } from '@slack/bolt';
import { MAX_REMIX_BYTES } from '../../../../commands/remix.ts';
import { userErrorReply } from '../../../../commands/reply.ts';
import type { Place } from '../../context.ts';
import { downloadSlackFile, isSlackFileUrl } from '../../lora-add.ts';
import type { SlackDeps } from '../deps.ts';
import { guarded } from '../guard.ts';

/** The shortcut's callback id, as the manifest declares it. */
export const REMIX_SHORTCUT = 'remix';

interface SharedFile {
  name?: string;
  mimetype?: string;
  size?: number;
  url_private?: string;
  url_private_download?: string;
}

const isPicture = (f: SharedFile) =>
  /^image\//.test(f.mimetype ?? '') || /\.(png|webp|jpe?g)$/i.test(f.name ?? '');

export function remixShortcut(deps: SlackDeps) {
  return async ({
    ack,
    shortcut,
    respond,
  }: SlackShortcutMiddlewareArgs & AllMiddlewareArgs): Promise<void> => {
    await ack();
    if (shortcut.type !== 'message_action') return;
    const body = shortcut as MessageShortcut;
    const place: Place = { channel: body.channel.id, userId: body.user.id, respond };
    await guarded(deps, place, 'remix', async () => {
      const files = ((body.message as { files?: SharedFile[] }).files ?? []).filter(isPicture);
      const file = files[0];
      const url = file?.url_private_download ?? file?.url_private;
      if (!file || !url) {
        await deps.delivery.ephemeral(
          userErrorReply(
            'That message has no picture to remix.',
            'Run Remix on a message with a picture the bot posted.',
          ),
          place,
        );
        return;
      }
      if (!isSlackFileUrl(url, deps.slack.apiUrl) || (file.size ?? 0) > MAX_REMIX_BYTES) {
        await deps.delivery.ephemeral(
          userErrorReply('That file cannot be remixed: it is not a picture on Slack from this bot.'),
          place,
        );
        return;
      }
      let bytes: Uint8Array;
      try {
        bytes = await downloadSlackFile(url, deps.slack.botToken, MAX_REMIX_BYTES);
      } catch (e) {
        deps.log.warn(`remix download for ${body.user.id}: ${(e as Error).message}`);
        await deps.delivery.ephemeral(
          userErrorReply('The picture could not be downloaded from Slack.', 'Try again.'),
          place,
        );
        return;
      }
      await deps.delivery.ephemeral(deps.bot.commands.remix(bytes).reply, place);
    });
  };
}
