// Tweak a binding's weight, same seed: a "Change weight…" button under the LoRA picker opens the
// weight form (commands/compose/weight-form.ts) as a modal, keyed by the form's id
// (`weight:<job>:<slot>`); its submission reruns the job with the new weight.

import type { ButtonInteraction, ModalSubmitInteraction } from 'discord.js';
import type { TweakSlot } from '../../../commands/actions.ts';
import {
  type ComposeTweak,
  decodeWeightFormId,
  readWeightForm,
  weightForm,
  weightFormId,
} from '../../../commands/compose/index.ts';
import { type ReplyButton, type ReplyForm, userErrorReply } from '../../../commands/reply.ts';
import type { ComposeRecord } from '../../../commands/service.ts';
import { chatContext, type DiscordDeps } from '../context.ts';
import { formModal, formValues } from '../form.ts';
import { respond, send } from '../respond.ts';
import type { ComponentHandler, Parsed } from './types.ts';

/** The button to put under a LoRA picker, when the slot has a weight to change. */
export function weightButton(job: ComposeRecord, slot: TweakSlot): ReplyButton | null {
  const r = job.data.request;
  if (slot === 'style' ? r.style === null : r.bindings[slot] === undefined) return null;
  return { id: weightFormId(job.id, slot), label: 'Change weight…', style: 'secondary' };
}

interface WeightTarget {
  job: ComposeRecord;
  slot: TweakSlot | null;
  form: ReplyForm;
}

async function parseId(customId: string, deps: DiscordDeps): Promise<Parsed<WeightTarget> | null> {
  const id = decodeWeightFormId(customId);
  if (!id) return null;
  const job = await deps.app.queue.get(id.jobId);
  if (!job)
    return {
      ok: false,
      reply: userErrorReply('That job has expired and is no longer stored.', 'Run /compose again.'),
    };
  const form = weightForm(job.id, job.data.request, id.slot, deps.app.commands.settings.limits);
  if (!form) return { ok: false, reply: userErrorReply('That subject is no longer part of the job.') };
  return { ok: true, value: { job, slot: id.slot, form } };
}

export const weightButtonHandler: ComponentHandler<ButtonInteraction, WeightTarget> = {
  parse: (interaction, deps) => parseId(interaction.customId, deps),
  async run(interaction, target) {
    await interaction.showModal(formModal(target.form));
  },
};

export const weightModalHandler: ComponentHandler<
  ModalSubmitInteraction,
  { job: ComposeRecord; tweak: ComposeTweak }
> = {
  async parse(interaction, deps) {
    const parsed = await parseId(interaction.customId, deps);
    if (!parsed?.ok) return parsed;
    const { job, slot } = parsed.value;
    const read = readWeightForm(job.data.request, slot, formValues(interaction));
    if (!read.ok) return { ok: false, reply: userErrorReply(read.problem.message) };
    return { ok: true, value: { job, tweak: read.tweak } };
  },
  async run(interaction, { job, tweak }, deps) {
    const outcome = await deps.app.commands.tweak(job, tweak, chatContext(interaction, deps));
    if (outcome.jobId === undefined) await send(interaction, outcome.reply, deps);
    else await respond(interaction, outcome, deps);
  },
};
