// Buttons under a job: Rerun, New seed, Show masks, Compare with merge, Tweak (and its
// selects), Cancel. Who may cancel whose job is decided by the commands, with admin rights
// looked up on Slack's side.

import type { AllMiddlewareArgs, BlockAction, SlackActionMiddlewareArgs } from '@slack/bolt';
import { actionContext, actionPlace } from '../../context.ts';
import type { SlackDeps } from '../deps.ts';
import { guarded } from '../guard.ts';
import { actionIdOf, isBlockAction, selectedValue } from './selected.ts';

export const JOB_ACTION = /^(rerun|seed|masks|merge|cancel|tweak):/;

export function jobAction(deps: SlackDeps) {
  return async ({
    ack,
    body,
    action,
    respond,
  }: SlackActionMiddlewareArgs & AllMiddlewareArgs): Promise<void> => {
    await ack();
    if (!isBlockAction(body)) return;
    const b = body as BlockAction;
    const a = action as BlockAction['actions'][number];
    const id = actionIdOf(a);
    // Masks answer in the thread under the picture; the rest post where the picture is.
    const place = actionPlace(b, respond, { underMessage: id.startsWith('masks:') });
    await guarded(deps, place, id.split(':')[0], async () => {
      const isAdmin = await deps.admins.isAdmin(b.user.id);
      const outcome = await deps.bot.commands.action(id, actionContext(b, isAdmin), selectedValue(a));
      await deps.delivery.deliver(outcome, place);
    });
  };
}
