// Shortcuts from a message's "More actions" menu.

import type { App as BoltApp } from '@slack/bolt';
import type { SlackDeps } from '../deps.ts';
import { REMIX_SHORTCUT, remixShortcut } from './remix.ts';

export function registerShortcuts(bolt: BoltApp, deps: SlackDeps): void {
  bolt.shortcut({ callback_id: REMIX_SHORTCUT, type: 'message_action' }, remixShortcut(deps));
}
