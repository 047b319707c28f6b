// The value a block action carries: a select's chosen option; buttons carry none we use.

import type { BlockAction, BlockElementAction } from '@slack/bolt';

export function actionIdOf(action: BlockElementAction): string {
  return action.action_id;
}

export function selectedValue(action: BlockElementAction): string | undefined {
  return action.type === 'static_select' ? action.selected_option?.value : undefined;
}

export function isBlockAction(body: unknown): body is BlockAction {
  return (body as { type?: string }).type === 'block_actions';
}
