// Sending the slash command definitions to Discord: to one server when DISCORD_GUILD_ID is set
// (they appear at once, for testing), else globally (Discord may take a while to show them).

import { REST, Routes } from 'discord.js';
import type { Config } from '../../config/index.ts';
import { commandDefinitions } from './commands/index.ts';
import { commandLimits } from './context.ts';

export interface Registration {
  /** "globally" or "in server <id>" */
  scope: string;
  names: string[];
}

export async function registerCommands(config: Config): Promise<Registration> {
  const discord = config.discord;
  if (!discord) throw new Error('set DISCORD_TOKEN and DISCORD_APPLICATION_ID to register the commands');
  const rest = new REST(discord.apiUrl ? { api: discord.apiUrl } : {}).setToken(discord.token);
  const route = discord.guildId
    ? Routes.applicationGuildCommands(discord.applicationId, discord.guildId)
    : Routes.applicationCommands(discord.applicationId);
  // PUT replaces the whole set, so commands removed from the code disappear from Discord too.
  const registered = (await rest.put(route, { body: commandDefinitions(commandLimits(config)) })) as {
    name: string;
  }[];
  return {
    scope: discord.guildId ? `in server ${discord.guildId}` : 'globally',
    names: registered.map((c) => c.name),
  };
}
