// The slash commands of the command table (commands/table.ts), as the manifest
// (bot/slack/manifest.yaml) declares them.

import type { App as BoltApp } from '@slack/bolt';
import { COMMAND_TABLE, type CommandName } from '../../../../commands/table.ts';
import type { SlackDeps } from '../deps.ts';
import { composeCommand } from './compose.ts';
import { helpCommand } from './help.ts';
import { loraCommand } from './lora.ts';
import { lorasCommand } from './loras.ts';
import { queueCommand } from './queue.ts';

type CommandListener = Parameters<BoltApp['command']>[1];

const LISTENERS: { readonly [N in CommandName]: (deps: SlackDeps) => CommandListener } = {
  compose: composeCommand,
  loras: lorasCommand,
  lora: loraCommand,
  queue: queueCommand,
  help: helpCommand,
};

export const SLASH_COMMANDS: readonly string[] = COMMAND_TABLE.map((c) => `/${c.name}`);

export function registerCommands(bolt: BoltApp, deps: SlackDeps): void {
  for (const { name } of COMMAND_TABLE) bolt.command(`/${name}`, LISTENERS[name](deps));
}
