// /help: the /compose language with examples and every option.

import { send } from '../respond.ts';
import { type SlashCommand, slashCommandBuilder } from './types.ts';

export const help: SlashCommand = {
  name: 'help',
  data: () => slashCommandBuilder('help'),

  async execute(interaction, deps) {
    await send(interaction, deps.app.commands.help(), deps);
  },
};
