// Modal submissions.

import type { App as BoltApp } from '@slack/bolt';
import { WEIGHTS_VIEW } from '../../weights.ts';
import type { SlackDeps } from '../deps.ts';
import { weightsSubmission } from './weights.ts';

export function registerViews(bolt: BoltApp, deps: SlackDeps): void {
  bolt.view(WEIGHTS_VIEW, weightsSubmission(deps));
}
