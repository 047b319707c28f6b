// /compose prompt:<text> and typed options. Each option becomes the `--flag` the /compose
// language reads, so the command shown under the picture is one the user could type anywhere.

import { type ChatInputCommandInteraction, InteractionContextType, SlashCommandBuilder } from 'discord.js';
import { COMPOSITION_METHODS, DEFAULT_COMPOSE_LIMITS, SAMPLERS } from '../../../commands/compose/index.ts';
import { quoteText } from '../../../commands/compose/options.ts';
import { promptChoices, sizeChoices } from '../autocomplete.ts';
import { chatContext } from '../context.ts';
import { respond, withinAckWindow } from '../respond.ts';
import type { SlashCommand } from './types.ts';

const L = DEFAULT_COMPOSE_LIMITS;

/** The /compose text for the options the user filled in. */
export function composeText(options: ChatInputCommandInteraction['options']): string {
  const parts = [options.getString('prompt', true).trim()];
  const seed = options.getInteger('seed');
  const steps = options.getInteger('steps');
  const size = options.getString('size');
  const cfg = options.getNumber('cfg');
  const negative = options.getString('negative');
  const sampler = options.getString('sampler');
  const method = options.getString('method');
  const masks = options.getBoolean('masks');
  if (seed !== null) parts.push(`--seed ${seed}`);
  if (steps !== null) parts.push(`--steps ${steps}`);
  if (size !== null) parts.push(`--size ${size.trim()}`);
  if (cfg !== null) parts.push(`--cfg ${cfg}`);
  if (negative !== null) parts.push(`--neg ${quoteText(negative)}`);
  if (sampler !== null) parts.push(`--sampler ${sampler}`);
  if (method !== null) parts.push(`--method ${method}`);
  if (masks !== null) parts.push(masks ? '--masks' : '--no-masks');
  return parts.join(' ');
}

export const compose: SlashCommand = {
  name: 'compose',
  data: (limits) =>
    new SlashCommandBuilder()
      .setName('compose')
      .setDescription('Compose several LoRAs into one picture with CLoRA')
      .setContexts(InteractionContextType.Guild, InteractionContextType.BotDM)
      .addStringOption((o) =>
        o
          .setName('prompt')
          .setDescription('Bind subjects to LoRAs, e.g. cat:<tabby> penguin:<plush> in a house')
          .setRequired(true)
          .setAutocomplete(true)
          .setMaxLength(L.maxPromptLength),
      )
      .addIntegerOption((o) =>
        o
          .setName('seed')
          .setDescription('The same seed gives the same picture')
          .setMinValue(0)
          .setMaxValue(L.maxSeed),
      )
      .addIntegerOption((o) =>
        o
          .setName('steps')
          .setDescription(`Denoising steps, ${L.minSteps}–${limits.maxSteps}`)
          .setMinValue(L.minSteps)
          .setMaxValue(limits.maxSteps),
      )
      .addStringOption((o) =>
        o
          .setName('size')
          .setDescription(
            `Width x height, multiples of 64 from ${limits.minSide} to ${limits.maxSide} (default: the model's own)`,
          )
          .setAutocomplete(true)
          .setMaxLength(11),
      )
      .addNumberOption((o) =>
        o
          .setName('cfg')
          .setDescription(`How closely to follow the prompt, ${L.minCfg}–${L.maxCfg}`)
          .setMinValue(L.minCfg)
          .setMaxValue(L.maxCfg),
      )
      .addStringOption((o) =>
        o
          .setName('negative')
          .setDescription('What the picture should not show')
          .setMaxLength(L.maxNegativeLength),
      )
      .addStringOption((o) =>
        o
          .setName('sampler')
          .setDescription('The denoising schedule')
          .addChoices(...SAMPLERS.map((s) => ({ name: s, value: s }))),
      )
      .addStringOption((o) =>
        o
          .setName('method')
          .setDescription('clora keeps LoRAs apart; merge sums them; composite averages; none: base model')
          .addChoices(...COMPOSITION_METHODS.map((m) => ({ name: m, value: m }))),
      )
      .addBooleanOption((o) => o.setName('masks').setDescription('Also send which LoRA drew which pixels')),

  async execute(interaction, deps) {
    const outcome = await withinAckWindow(
      interaction,
      deps.app.commands.compose(composeText(interaction.options), chatContext(interaction, deps)),
    );
    await respond(interaction, outcome, deps);
  },

  async autocomplete(interaction, deps) {
    const focused = interaction.options.getFocused(true);
    const choices =
      focused.name === 'size'
        ? sizeChoices(String(focused.value), deps.limits, deps.app.commands.settings.defaults.width)
        : promptChoices(String(focused.value), deps.app.library.names());
    await interaction.respond(choices);
  },
};
