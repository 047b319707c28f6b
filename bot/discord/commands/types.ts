// What a slash command module exports, as in the discord.js guide: its definition and its handlers.

import type {
  AutocompleteInteraction,
  ChatInputCommandInteraction,
  RESTPostAPIChatInputApplicationCommandsJSONBody,
} from 'discord.js';
import type { CommandLimits, DiscordDeps } from '../context.ts';

export interface SlashCommand {
  name: string;
  /** the definition registered with Discord; ranges follow the operator's limits */
  data(limits: CommandLimits): { toJSON(): RESTPostAPIChatInputApplicationCommandsJSONBody };
  execute(interaction: ChatInputCommandInteraction, deps: DiscordDeps): Promise<void>;
  autocomplete?(interaction: AutocompleteInteraction, deps: DiscordDeps): Promise<void>;
}
