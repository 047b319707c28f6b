// /compose prompt:<text> and typed options. Each option becomes the `--flag` the /compose
// language reads, so the command shown under the picture is one the user could type anywhere.
// /compose remix:<picture> gives back the command a picture from the bot carries, to edit.

import { type Attachment, type ChatInputCommandInteraction, MessageFlags } from 'discord.js';
import { COMPOSITION_METHODS, SAMPLERS } from '../../../commands/compose/index.ts';
import { quoteText } from '../../../commands/compose/options.ts';
import { MAX_REMIX_BYTES } from '../../../commands/remix.ts';
import { userErrorReply } from '../../../commands/reply.ts';
import { downloadCapped } from '../../library/download.ts';
import { promptChoices, sizeChoices } from '../autocomplete.ts';
import type { DiscordDeps } from '../context.ts';
import { chatContext } from '../context.ts';
import { describeError } from '../errors.ts';
import { respond, send, withinAckWindow } from '../respond.ts';
import { type SlashCommand, slashCommandBuilder } from './types.ts';

/** The /compose text for the options the user filled in. */
export function composeText(options: ChatInputCommandInteraction['options']): string {
  const parts = [(options.getString('prompt') ?? '').trim()];
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
    slashCommandBuilder('compose')
      .addStringOption((o) =>
        o
          .setName('prompt')
          .setDescription('Bind subjects to LoRAs, e.g. cat:<sks-cat> penguin:<ohwx-penguin> in a house')
          .setAutocomplete(true)
          .setMaxLength(limits.maxPromptLength),
      )
      .addIntegerOption((o) =>
        o
          .setName('seed')
          .setDescription('The same seed gives the same picture')
          .setMinValue(0)
          .setMaxValue(limits.maxSeed),
      )
      .addIntegerOption((o) =>
        o
          .setName('steps')
          .setDescription(`Denoising steps, ${limits.minSteps}–${limits.maxSteps}`)
          .setMinValue(limits.minSteps)
          .setMaxValue(limits.maxSteps),
      )
      .addStringOption((o) =>
        o
          .setName('size')
          .setDescription(
            `Width x height, multiples of ${limits.sideMultiple} from ${limits.minSide} to ${limits.maxSide} (default: the model's own)`,
          )
          .setAutocomplete(true)
          .setMaxLength(11),
      )
      .addNumberOption((o) =>
        o
          .setName('cfg')
          .setDescription(`How closely to follow the prompt, ${limits.minCfg}–${limits.maxCfg}`)
          .setMinValue(limits.minCfg)
          .setMaxValue(limits.maxCfg),
      )
      .addStringOption((o) =>
        o
          .setName('negative')
          .setDescription('What the picture should not show')
          .setMaxLength(limits.maxNegativeLength),
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
      .addBooleanOption((o) => o.setName('masks').setDescription('Also send which LoRA drew which pixels'))
      .addAttachmentOption((o) =>
        o
          .setName('remix')
          .setDescription('A PNG the bot made: get its command back to edit (instead of a prompt)'),
      ),

  async execute(interaction, deps) {
    const picture = interaction.options.getAttachment('remix');
    if (picture) return remix(interaction, picture, deps);
    if (!interaction.options.getString('prompt')?.trim()) {
      await send(
        interaction,
        userErrorReply(
          '/compose needs a prompt, e.g. cat:<sks-cat> penguin:<ohwx-penguin> in a house.',
          'Or attach a picture the bot made as remix: to get its command back.',
        ),
        deps,
      );
      return;
    }
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

/** The command a picture carries, read after a capped download; the user edits and runs it themselves. */
async function remix(interaction: ChatInputCommandInteraction, picture: Attachment, deps: DiscordDeps) {
  if (interaction.options.getString('prompt')?.trim()) {
    await send(interaction, userErrorReply('Give a prompt or a picture to remix, not both.'), deps);
    return;
  }
  if (picture.size > MAX_REMIX_BYTES) {
    await send(
      interaction,
      userErrorReply(`'${picture.name}' is too large to be a picture from this bot.`),
      deps,
    );
    return;
  }
  await interaction.deferReply({ flags: MessageFlags.Ephemeral });
  let bytes: Uint8Array;
  try {
    bytes = await downloadCapped(picture.url, MAX_REMIX_BYTES, { source: 'Discord', timeoutMs: 30_000 });
  } catch (e) {
    deps.log.warn(`remix download for ${interaction.user.id}: ${describeError(e)}`);
    await send(
      interaction,
      userErrorReply(`'${picture.name}' could not be downloaded from Discord.`, 'Try again.'),
      deps,
    );
    return;
  }
  await send(interaction, deps.app.commands.remix(bytes).reply, deps);
}
