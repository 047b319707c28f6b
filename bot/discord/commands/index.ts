// The slash commands: one module each, in the order of the command table (commands/table.ts);
// this list is what `npm run register` sends to Discord and what the adapter dispatches by name.

import type { RESTPostAPIChatInputApplicationCommandsJSONBody } from 'discord.js';
import { COMMAND_TABLE, type CommandName } from '../../../commands/table.ts';
import type { CommandLimits } from '../context.ts';
import { compose } from './compose.ts';
import { help } from './help.ts';
import { lora } from './lora.ts';
import { loras } from './loras.ts';
import { queue } from './queue.ts';
import type { SlashCommand } from './types.ts';

export type { SlashCommand } from './types.ts';

const MODULES: { readonly [N in CommandName]: SlashCommand } = { compose, loras, lora, queue, help };

export const SLASH_COMMANDS: readonly SlashCommand[] = COMMAND_TABLE.map((c) => MODULES[c.name]);

const byName = new Map<string, SlashCommand>(SLASH_COMMANDS.map((c) => [c.name, c]));

export function findCommand(name: string): SlashCommand | undefined {
  return byName.get(name);
}

/** The definitions as Discord's PUT /applications/{app}/commands takes them. */
export function commandDefinitions(limits: CommandLimits): RESTPostAPIChatInputApplicationCommandsJSONBody[] {
  return SLASH_COMMANDS.map((c) => c.data(limits).toJSON());
}
