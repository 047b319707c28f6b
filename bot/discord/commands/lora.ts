// /lora info name:<lora> shows one LoRA's card; /lora add file:<.safetensors> (or
// civitai:<id, link or AIR>) lets a library admin add a LoRA for everyone: size-capped before
// download, read only as safetensors, and checked against the SD 1.5 model before it is listed.

import { type Attachment, MessageFlags } from 'discord.js';
import { formatBytes, loraAddedReply } from '../../../commands/loras.ts';
import { type MessageReply, userErrorReply } from '../../../commands/reply.ts';
import { addFromCivitai, CIVITAI_ADD_HINT, civitaiClient } from '../../civitai/index.ts';
import { downloadCapped, UploadTooLarge } from '../../library/download.ts';
import { MAX_NAME_LENGTH } from '../../library/index.ts';
import { loraChoices } from '../autocomplete.ts';
import type { DiscordDeps } from '../context.ts';
import { describeError } from '../errors.ts';
import { adminOnlyReply, isAdmin } from '../preconditions.ts';
import { send, withinAckWindow } from '../respond.ts';
import { type SlashCommand, slashCommandBuilder } from './types.ts';

const PICKLED = /\.(ckpt|pt|pth|bin|pkl)$/i;

export const lora: SlashCommand = {
  name: 'lora',
  data: (limits) =>
    slashCommandBuilder('lora')
      .addSubcommand((s) =>
        s
          .setName('info')
          .setDescription("A LoRA's card: trigger words, base model, source")
          .addStringOption((o) =>
            o
              .setName('name')
              .setDescription('The LoRA')
              .setRequired(true)
              .setAutocomplete(true)
              .setMaxLength(100),
          ),
      )
      .addSubcommand((s) =>
        s
          .setName('add')
          .setDescription(
            `Add a LoRA for everyone (admins; .safetensors up to ${formatBytes(limits.loraUploadBytes)})`,
          )
          .addAttachmentOption((o) =>
            o.setName('file').setDescription('The LoRA as a .safetensors file (SD 1.5)'),
          )
          .addStringOption((o) =>
            o
              .setName('civitai')
              .setDescription(
                'Or from Civitai: civitai:<model-version id>, a civitai.com model link, or an AIR',
              )
              .setMaxLength(300),
          )
          .addStringOption((o) =>
            o
              .setName('name')
              .setDescription('Name to compose with (default: from the file name)')
              .setMaxLength(MAX_NAME_LENGTH),
          )
          .addBooleanOption((o) => o.setName('replace').setDescription('Replace a LoRA of the same name')),
      ),

  async execute(interaction, deps) {
    if (interaction.options.getSubcommand() === 'add') {
      await add(interaction, deps);
      return;
    }
    const name = interaction.options.getString('name', true);
    const reply = deps.app.commands.lora(name, {
      confirmAdmin: async () => isAdmin(interaction, deps.config.adminRole),
    });
    await send(interaction, await withinAckWindow(interaction, reply), deps);
  },

  async autocomplete(interaction, deps) {
    const typed = String(interaction.options.getFocused());
    await interaction.respond(
      loraChoices(
        typed,
        deps.app.library.list().map((e) => e.name),
      ),
    );
  },
};

/** Why an attachment cannot be a LoRA upload, before downloading a byte of it. */
export function uploadProblem(
  file: Pick<Attachment, 'name' | 'size'>,
  maxBytes: number,
): MessageReply | null {
  if (PICKLED.test(file.name)) {
    return userErrorReply(
      `'${file.name}' is a pickled file, which can run code when loaded; only .safetensors LoRAs are taken.`,
      'Convert it to .safetensors (or download the .safetensors version) and attach that.',
    );
  }
  if (!/\.safetensors$/i.test(file.name)) {
    return userErrorReply(
      `'${file.name}' is not a .safetensors file.`,
      "Attach the LoRA's .safetensors file (SD 1.5).",
    );
  }
  if (file.size > maxBytes) {
    return userErrorReply(
      `'${file.name}' is ${formatBytes(file.size)}; LoRAs up to ${formatBytes(maxBytes)} can be added.`,
      'Attach a smaller LoRA (a lower rank), or ask the operator to raise LORA_UPLOAD_MAX_MB.',
    );
  }
  return null;
}

async function add(interaction: Parameters<SlashCommand['execute']>[0], deps: DiscordDeps): Promise<void> {
  if (!isAdmin(interaction, deps.config.adminRole)) {
    await send(interaction, adminOnlyReply(deps.config.adminRole), deps);
    return;
  }
  const civitai = interaction.options.getString('civitai')?.trim();
  const file = interaction.options.getAttachment('file');
  if (civitai && !file) {
    await addFromCivitaiOption(interaction, deps, civitai);
    return;
  }
  if (!file || civitai) {
    await send(
      interaction,
      userErrorReply(
        'Give the LoRA one way: attach its .safetensors file, or name it on Civitai.',
        `For example ${CIVITAI_ADD_HINT}.`,
      ),
      deps,
    );
    return;
  }
  const problem = uploadProblem(file, deps.limits.loraUploadBytes);
  if (problem) {
    await send(interaction, problem, deps);
    return;
  }
  // Downloading and checking a LoRA against the model takes longer than Discord's 3 seconds.
  await interaction.deferReply({ flags: MessageFlags.Ephemeral });
  let bytes: Uint8Array;
  try {
    bytes = await downloadCapped(file.url, deps.limits.loraUploadBytes, { source: 'Discord' });
  } catch (e) {
    deps.log.warn(`LoRA upload from ${interaction.user.id}: ${describeError(e)}`);
    const reason = e instanceof UploadTooLarge ? e.message : 'the file could not be downloaded from Discord';
    await send(interaction, userErrorReply(`'${file.name}' was not added: ${reason}.`, 'Try again.'), deps);
    return;
  }
  const name = interaction.options.getString('name') ?? file.name.replace(/\.safetensors$/i, '');
  const replace = interaction.options.getBoolean('replace') ?? false;
  const result = await deps.app.library.add(name, bytes, { replace });
  if (!result.ok) {
    await send(
      interaction,
      userErrorReply(result.message, 'Fix the file or the name and run /lora add again.'),
      deps,
    );
    return;
  }
  const entry = result.entry;
  deps.log.info(`LoRA '${entry.name}' ${result.replaced ? 'replaced' : 'added'} by ${interaction.user.id}`);
  await send(interaction, loraAddedReply(entry, result.replaced), deps);
}

async function addFromCivitaiOption(
  interaction: Parameters<SlashCommand['execute']>[0],
  deps: DiscordDeps,
  reference: string,
): Promise<void> {
  // Metadata, download and the check take longer than Discord's 3 seconds.
  await interaction.deferReply({ flags: MessageFlags.Ephemeral });
  const outcome = await addFromCivitai(
    {
      reference,
      name: interaction.options.getString('name') ?? undefined,
      replace: interaction.options.getBoolean('replace') ?? false,
    },
    civitaiClient(deps.app.config),
    deps.app.library,
    deps.limits.loraUploadBytes,
  );
  if (outcome.added) deps.log.info(`LoRA '${outcome.added}' added from Civitai by ${interaction.user.id}`);
  await send(interaction, outcome.reply, deps);
}
