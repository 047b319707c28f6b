// /queue: the user's recent jobs and where each stands.

import { chatContext } from '../context.ts';
import { send } from '../respond.ts';
import { type SlashCommand, slashCommandBuilder } from './types.ts';

export const queue: SlashCommand = {
  name: 'queue',
  data: () => slashCommandBuilder('queue'),

  async execute(interaction, deps) {
    await send(interaction, await deps.app.commands.queueStatus(chatContext(interaction, deps)), deps);
  },
};
