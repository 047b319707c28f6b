// What a slash command module exports, as in the discord.js guide: its definition and its handlers.

import {
  type AutocompleteInteraction,
  type ChatInputCommandInteraction,
  InteractionContextType,
  type RESTPostAPIChatInputApplicationCommandsJSONBody,
  SlashCommandBuilder,
} from 'discord.js';
import { type CommandName, commandEntry } from '../../../commands/table.ts';
import type { CommandLimits, DiscordDeps } from '../context.ts';

export interface SlashCommand {
  name: CommandName;
  /** the definition registered with Discord; ranges follow the operator's limits */
  data(limits: CommandLimits): { toJSON(): RESTPostAPIChatInputApplicationCommandsJSONBody };
  execute(interaction: ChatInputCommandInteraction, deps: DiscordDeps): Promise<void>;
  autocomplete?(interaction: AutocompleteInteraction, deps: DiscordDeps): Promise<void>;
}

/** The command table's entry as Discord's builder, usable in servers and the bot's DMs. */
export function slashCommandBuilder(name: CommandName): SlashCommandBuilder {
  const { description } = commandEntry(name);
  return new SlashCommandBuilder()
    .setName(name)
    .setDescription(description)
    .setContexts(InteractionContextType.Guild, InteractionContextType.BotDM);
}
