// Every button and select the commands render (rerun, new seed, masks, merge, cancel, tweak,
// /loras pages and cards): the custom_id is the action id, the job lives in the queue's store,
// so a button keeps working after the bot restarts.

import type { ButtonInteraction, StringSelectMenuInteraction } from 'discord.js';
import { decodeActionId, type TweakSlot } from '../../../commands/actions.ts';
import type { ComposeRecord } from '../../../commands/service.ts';
import { chatContext } from '../context.ts';
import { respond } from '../respond.ts';
import type { ComponentHandler } from './types.ts';
import { weightButton } from './weight.ts';

interface ActionPress {
  id: string;
  /** the chosen option of a select */
  value?: string;
  /** the job a tweak picker is about, to offer its weight too */
  tweak?: { job: ComposeRecord; slot: TweakSlot };
}

export const actionHandler: ComponentHandler<ButtonInteraction | StringSelectMenuInteraction, ActionPress> = {
  async parse(interaction, deps) {
    const id = interaction.customId;
    const value = interaction.isStringSelectMenu() ? interaction.values[0] : undefined;
    const action = decodeActionId(id);
    if (action?.kind !== 'tweak') return { ok: true, value: { id, value } };
    // Picking a slot, or paging its LoRAs: the picker that comes back gets a weight button.
    const slot: TweakSlot | null =
      action.slot ?? (value === undefined ? null : value === 'style' ? 'style' : Number(value));
    const job = slot === null ? undefined : await deps.app.queue.get(action.jobId);
    const picking = slot !== null && !(action.slot !== null && value !== undefined);
    return { ok: true, value: { id, value, ...(job && picking ? { tweak: { job, slot: slot! } } : {}) } };
  },

  async run(interaction, press, deps) {
    const outcome = await deps.app.commands.action(press.id, chatContext(interaction, deps), press.value);
    const extra = press.tweak && weightButton(press.tweak.job, press.tweak.slot);
    if (extra && outcome.replace && outcome.reply.kind === 'message' && outcome.reply.rows) {
      outcome.reply.rows.push({ kind: 'buttons', buttons: [extra] });
    }
    await respond(interaction, outcome, deps);
  },
};
