// /queue: the user's recent jobs and where each stands.

import { InteractionContextType, SlashCommandBuilder } from 'discord.js';
import { chatContext } from '../context.ts';
import { send } from '../respond.ts';
import type { SlashCommand } from './types.ts';

export const queue: SlashCommand = {
  name: 'queue',
  data: () =>
    new SlashCommandBuilder()
      .setName('queue')
      .setDescription('Your recent pictures and where they stand in the queue')
      .setContexts(InteractionContextType.Guild, InteractionContextType.BotDM),

  async execute(interaction, deps) {
    await send(interaction, await deps.app.commands.queueStatus(chatContext(interaction, deps)), deps);
  },
};
