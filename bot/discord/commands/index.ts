// The slash commands: one module each; this list is what `npm run register` sends to Discord
// and what the adapter dispatches by name.

import type { RESTPostAPIChatInputApplicationCommandsJSONBody } from 'discord.js';
import type { CommandLimits } from '../context.ts';
import { compose } from './compose.ts';
import { help } from './help.ts';
import { lora } from './lora.ts';
import { loras } from './loras.ts';
import { queue } from './queue.ts';
import type { SlashCommand } from './types.ts';

export type { SlashCommand } from './types.ts';

export const SLASH_COMMANDS: readonly SlashCommand[] = [compose, loras, lora, queue, help];

const byName = new Map(SLASH_COMMANDS.map((c) => [c.name, c]));

export function findCommand(name: string): SlashCommand | undefined {
  return byName.get(name);
}

/** The definitions as Discord's PUT /applications/{app}/commands takes them. */
export function commandDefinitions(limits: CommandLimits): RESTPostAPIChatInputApplicationCommandsJSONBody[] {
  return SLASH_COMMANDS.map((c) => c.data(limits).toJSON());
}
