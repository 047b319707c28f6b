// Buttons and selects, by the action id prefixes commands/actions.ts encodes.

import type { App as BoltApp } from '@slack/bolt';
import type { SlackDeps } from '../deps.ts';
import { JOB_ACTION, jobAction } from './job.ts';
import { LORA_ACTION, loraAction } from './loras.ts';
import { WEIGHTS_ACTION, weightsAction } from './weights.ts';

export function registerActions(bolt: BoltApp, deps: SlackDeps): void {
  bolt.action(JOB_ACTION, jobAction(deps));
  bolt.action(LORA_ACTION, loraAction(deps));
  bolt.action(WEIGHTS_ACTION, weightsAction(deps));
}
