// A form (commands/reply.ts) as a Discord modal, and a submitted modal's values read back by
// field id. Discord's modal limits are enforced here; a modal cannot show per-field errors,
// so a refused submission is answered with an ephemeral reply instead.

import {
  ComponentType,
  LabelBuilder,
  ModalBuilder,
  type ModalSubmitInteraction,
  StringSelectMenuBuilder,
  TextInputBuilder,
  TextInputStyle,
} from 'discord.js';
import { type FormField, type FormValues, type ReplyForm, truncate } from '../../commands/reply.ts';
import { DISCORD_LIMITS } from './render.ts';

// A weight such as 0.85 fits; nothing a number field takes needs more.
const NUMBER_LENGTH = 8;

/** The modal for `form`; its custom_id is the form's id. */
export function formModal(form: ReplyForm): ModalBuilder {
  return new ModalBuilder()
    .setCustomId(form.id)
    .setTitle(truncate(form.title, DISCORD_LIMITS.modalTitle))
    .addLabelComponents(form.fields.map(label));
}

function label(field: FormField): LabelBuilder {
  const built = new LabelBuilder().setLabel(truncate(field.label, DISCORD_LIMITS.label));
  if (field.kind === 'choice') {
    return built.setStringSelectMenuComponent(
      new StringSelectMenuBuilder().setCustomId(field.id).addOptions(
        field.options.slice(0, DISCORD_LIMITS.selectOptions).map((o) => ({
          label: truncate(o.label, DISCORD_LIMITS.optionLabel),
          value: o.value,
          default: o.value === field.initial,
        })),
      ),
    );
  }
  if (field.hint) built.setDescription(truncate(field.hint, DISCORD_LIMITS.labelDescription));
  return built.setTextInputComponent(
    new TextInputBuilder()
      .setCustomId(field.id)
      .setStyle(TextInputStyle.Short)
      .setValue(String(field.initial))
      .setMinLength(1)
      .setMaxLength(NUMBER_LENGTH)
      .setRequired(true),
  );
}

/** What a submitted modal's fields hold, by field id. */
export function formValues(interaction: ModalSubmitInteraction): FormValues {
  const values: Record<string, string | undefined> = {};
  // The kinds a form renders to: text inputs (numbers) and string selects (choices).
  for (const [id, field] of interaction.fields.fields) {
    if (field.type === ComponentType.TextInput) values[id] = field.value;
    else if (field.type === ComponentType.StringSelect) values[id] = field.values?.[0];
  }
  return values;
}
