// Tweak a binding's weight, same seed: a "Change weight…" button under the LoRA picker opens a
// modal; its submission reruns the job with the new weight. Only Discord has modals, so these
// ids (`weight:<job>:<slot>`) are the adapter's own.

import {
  type ButtonInteraction,
  LabelBuilder,
  ModalBuilder,
  type ModalSubmitInteraction,
  TextInputBuilder,
  TextInputStyle,
} from 'discord.js';
import type { TweakSlot } from '../../../commands/actions.ts';
import type { ComposeTweak } from '../../../commands/compose/index.ts';
import { DEFAULT_COMPOSE_LIMITS } from '../../../commands/compose/index.ts';
import type { ReplyButton } from '../../../commands/reply.ts';
import { userErrorReply } from '../../../commands/reply.ts';
import type { ComposeRecord } from '../../../commands/service.ts';
import { chatContext, type DiscordDeps } from '../context.ts';
import { respond, send } from '../respond.ts';
import type { ComponentHandler, Parsed } from './types.ts';

const WEIGHT_ID = /^weight:([A-Za-z0-9_-]{1,64}):(style|0|[1-9]\d?)$/;
const FIELD = 'weight';

export function weightId(jobId: string, slot: TweakSlot): string {
  return `weight:${jobId}:${slot}`;
}

/** The button to put under a LoRA picker, when the slot has a weight to change. */
export function weightButton(job: ComposeRecord, slot: TweakSlot): ReplyButton | null {
  const r = job.data.request;
  if (slot === 'style' ? r.style === null : r.bindings[slot] === undefined) return null;
  return { id: weightId(job.id, slot), label: 'Change weight…', style: 'secondary' };
}

interface WeightTarget {
  job: ComposeRecord;
  slot: TweakSlot;
  /** who the weight belongs to, as the user reads it */
  subject: string;
  current: number;
}

async function parseId(customId: string, deps: DiscordDeps): Promise<Parsed<WeightTarget> | null> {
  const m = WEIGHT_ID.exec(customId);
  if (!m) return null;
  const job = await deps.app.queue.get(m[1]);
  if (!job)
    return {
      ok: false,
      reply: userErrorReply('That job has expired and is no longer stored.', 'Run /compose again.'),
    };
  const slot: TweakSlot = m[2] === 'style' ? 'style' : Number(m[2]);
  const r = job.data.request;
  const binding = slot === 'style' ? r.style : r.bindings[slot];
  if (!binding) return { ok: false, reply: userErrorReply('That subject is no longer part of the job.') };
  const subject = slot === 'style' ? 'the style' : (r.bindings[slot]?.subject ?? 'the subject');
  return { ok: true, value: { job, slot, subject, current: binding.weight } };
}

export const weightButtonHandler: ComponentHandler<ButtonInteraction, WeightTarget> = {
  parse: (interaction, deps) => parseId(interaction.customId, deps),
  async run(interaction, target) {
    const { minWeight, maxWeight } = DEFAULT_COMPOSE_LIMITS;
    const modal = new ModalBuilder()
      .setCustomId(interaction.customId)
      .setTitle(`Weight for ${target.subject}`.slice(0, 45))
      .addLabelComponents(
        new LabelBuilder()
          .setLabel(`Weight, ${minWeight}–${maxWeight}`)
          .setDescription('1 is the LoRA as trained; the seed and all else stay the same')
          .setTextInputComponent(
            new TextInputBuilder()
              .setCustomId(FIELD)
              .setStyle(TextInputStyle.Short)
              .setValue(String(target.current))
              .setMinLength(1)
              .setMaxLength(8)
              .setRequired(true),
          ),
      );
    await interaction.showModal(modal);
  },
};

export const weightModalHandler: ComponentHandler<ModalSubmitInteraction, WeightTarget & { weight: number }> =
  {
    async parse(interaction, deps) {
      const parsed = await parseId(interaction.customId, deps);
      if (!parsed?.ok) return parsed;
      const text = interaction.fields.getTextInputValue(FIELD).trim();
      const weight = Number(text);
      if (text === '' || !Number.isFinite(weight)) {
        return {
          ok: false,
          reply: userErrorReply(
            `'${text}' is not a number.`,
            'Type a weight such as 0.8, then submit again.',
          ),
        };
      }
      return { ok: true, value: { ...parsed.value, weight } };
    },
    async run(interaction, target, deps) {
      const { job, slot, weight } = target;
      const r = job.data.request;
      const tweak: ComposeTweak =
        slot === 'style'
          ? { kind: 'style', style: { lora: r.style!.lora, weight } }
          : { kind: 'weight', subject: r.bindings[slot].subject, weight };
      const outcome = await deps.app.commands.tweak(job, tweak, chatContext(interaction, deps));
      if (outcome.jobId === undefined) await send(interaction, outcome.reply, deps);
      else await respond(interaction, outcome, deps);
    },
  };
