// A command's outcome as Discord responses: a new job gets a deferred reply that is then edited
// with its progress; a replacing reply updates the message a button sits on; anything carrying
// pictures is deferred first so slow encoding never misses Discord's 3-second window.

import type {
  ChatInputCommandInteraction,
  MessageComponentInteraction,
  ModalSubmitInteraction,
} from 'discord.js';
import { MessageFlags } from 'discord.js';
import type { Reply } from '../../commands/reply.ts';
import type { CommandOutcome } from '../../commands/service.ts';
import { type DiscordDeps, replyTarget } from './context.ts';
import { editOptions, type RenderedMessage, renderReply, replyOptions } from './render.ts';

export type RepliableInteraction =
  | ChatInputCommandInteraction
  | MessageComponentInteraction
  | ModalSubmitInteraction;

/** Discord drops an interaction not answered within 3 s; past this we defer and finish later. */
export const ACK_BUDGET_MS = 2000;

function carriesPictures(reply: Reply): boolean {
  if (reply.kind === 'message') return (reply.images?.length ?? 0) > 0;
  return reply.progress.state === 'running' && reply.progress.preview !== null;
}

function fromMessage(interaction: RepliableInteraction): interaction is MessageComponentInteraction {
  return interaction.isMessageComponent();
}

async function render(
  interaction: RepliableInteraction,
  reply: Reply,
  deps: DiscordDeps,
): Promise<RenderedMessage> {
  const message = await renderReply(reply, {
    maxAttachmentBytes: replyTarget(interaction, deps).maxAttachmentBytes,
  });
  if (message.adjustments.length) deps.log.debug(`reply adjusted: ${message.adjustments.join('; ')}`);
  return message;
}

export async function respond(
  interaction: RepliableInteraction,
  outcome: CommandOutcome,
  deps: DiscordDeps,
): Promise<void> {
  const { reply } = outcome;
  if (outcome.jobId !== undefined && !outcome.replace) {
    // A new job: acknowledge at once, then show where it stands and follow it.
    if (!interaction.deferred && !interaction.replied)
      await interaction.deferReply(reply.ephemeral ? { flags: MessageFlags.Ephemeral } : {});
    await interaction.editReply(editOptions(await render(interaction, reply, deps)));
    deps.delivery.follow(outcome.jobId, replyTarget(interaction, deps));
    return;
  }
  if (outcome.replace && fromMessage(interaction) && !interaction.deferred && !interaction.replied) {
    if (carriesPictures(reply)) {
      await interaction.deferUpdate();
      await interaction.editReply(editOptions(await render(interaction, reply, deps)));
    } else {
      await interaction.update(editOptions(await render(interaction, reply, deps)));
    }
    return;
  }
  await send(interaction, reply, deps);
}

/** A new message in answer to the interaction (ephemeral when the reply says so). */
export async function send(
  interaction: RepliableInteraction,
  reply: Reply,
  deps: DiscordDeps,
): Promise<void> {
  if (interaction.deferred || interaction.replied) {
    const message = await render(interaction, reply, deps);
    // A deferral's visibility is fixed: an error after a public "thinking…" replaces it privately.
    if (Boolean(interaction.ephemeral) === message.ephemeral) {
      await interaction.editReply(editOptions(message));
    } else {
      await interaction.deleteReply().catch(() => undefined);
      await interaction.followUp(replyOptions(message));
    }
    return;
  }
  if (carriesPictures(reply)) {
    await interaction.deferReply(reply.ephemeral ? { flags: MessageFlags.Ephemeral } : {});
    await interaction.editReply(editOptions(await render(interaction, reply, deps)));
    return;
  }
  await interaction.reply(replyOptions(await render(interaction, reply, deps)));
}

const LATE = Symbol('late');

/** Waits for `work` up to the ack budget; past it, defers (publicly) so Discord keeps waiting. */
export async function withinAckWindow<T>(interaction: RepliableInteraction, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<typeof LATE>((resolve) => {
    timer = setTimeout(() => resolve(LATE), ACK_BUDGET_MS);
  });
  const first = await Promise.race([work, late]);
  clearTimeout(timer);
  if (first !== LATE) return first;
  if (!interaction.deferred && !interaction.replied) await interaction.deferReply();
  return work;
}
