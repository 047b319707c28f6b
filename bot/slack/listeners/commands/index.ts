// The slash commands, as the manifest (bot/slack/manifest.yaml) declares them.

import type { App as BoltApp } from '@slack/bolt';
import type { SlackDeps } from '../deps.ts';
import { composeCommand } from './compose.ts';
import { loraCommand } from './lora.ts';
import { lorasCommand } from './loras.ts';
import { queueCommand } from './queue.ts';

export const SLASH_COMMANDS = ['/compose', '/loras', '/lora', '/queue'] as const;

export function registerCommands(bolt: BoltApp, deps: SlackDeps): void {
  bolt.command('/compose', composeCommand(deps));
  bolt.command('/loras', lorasCommand(deps));
  bolt.command('/lora', loraCommand(deps));
  bolt.command('/queue', queueCommand(deps));
}
