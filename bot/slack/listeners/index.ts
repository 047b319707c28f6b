// Registers every listener by kind: slash commands, block actions, view submissions, shortcuts.

import type { App as BoltApp } from '@slack/bolt';
import { registerActions } from './actions/index.ts';
import { registerCommands } from './commands/index.ts';
import type { SlackDeps } from './deps.ts';
import { registerShortcuts } from './shortcuts/index.ts';
import { registerViews } from './views/index.ts';

export type { SlackDeps } from './deps.ts';

export function registerListeners(bolt: BoltApp, deps: SlackDeps): void {
  registerCommands(bolt, deps);
  registerActions(bolt, deps);
  registerViews(bolt, deps);
  registerShortcuts(bolt, deps);
}
