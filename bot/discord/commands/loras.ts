// /loras [search] [page]: the LoRA library a page of 25 at a time, with a select to open a card
// and buttons to page on.

import { send } from '../respond.ts';
import { type SlashCommand, slashCommandBuilder } from './types.ts';

export const loras: SlashCommand = {
  name: 'loras',
  data: () =>
    slashCommandBuilder('loras')
      .addStringOption((o) =>
        o.setName('search').setDescription('Name, trigger word or tag to look for').setMaxLength(64),
      )
      .addIntegerOption((o) =>
        o.setName('page').setDescription('Page of the list').setMinValue(1).setMaxValue(10_000),
      ),

  async execute(interaction, deps) {
    const query = interaction.options.getString('search') ?? '';
    const page = (interaction.options.getInteger('page') ?? 1) - 1;
    await send(interaction, deps.app.commands.loras(query, page), deps);
  },
};
