// /help: the /compose language with examples and every option.

import { InteractionContextType, SlashCommandBuilder } from 'discord.js';
import { send } from '../respond.ts';
import type { SlashCommand } from './types.ts';

export const help: SlashCommand = {
  name: 'help',
  data: () =>
    new SlashCommandBuilder()
      .setName('help')
      .setDescription('How to write a /compose prompt, with examples')
      .setContexts(InteractionContextType.Guild, InteractionContextType.BotDM),

  async execute(interaction, deps) {
    await send(interaction, deps.app.commands.help(), deps);
  },
};
