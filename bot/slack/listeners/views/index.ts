// Modal submissions.

import type { App as BoltApp } from '@slack/bolt';
import { LORA_ADD_VIEW } from '../../lora-add.ts';
import { WEIGHTS_VIEW } from '../../weights.ts';
import type { SlackDeps } from '../deps.ts';
import { loraAddSubmission } from './lora-add.ts';
import { weightsSubmission } from './weights.ts';

export function registerViews(bolt: BoltApp, deps: SlackDeps): void {
  bolt.view(WEIGHTS_VIEW, weightsSubmission(deps));
  bolt.view(LORA_ADD_VIEW, loraAddSubmission(deps));
}
