// The Weights… button: opens the modal (views.open needs the press's trigger_id, valid 3 s).

import type { AllMiddlewareArgs, BlockAction, SlackActionMiddlewareArgs } from '@slack/bolt';
import { userErrorReply } from '../../../../commands/reply.ts';
import { actionPlace } from '../../context.ts';
import { jobOfWeightsAction, weightsView } from '../../weights.ts';
import type { SlackDeps } from '../deps.ts';
import { guarded } from '../guard.ts';
import { actionIdOf, isBlockAction } from './selected.ts';

export const WEIGHTS_ACTION = /^weights:/;

export function weightsAction(deps: SlackDeps) {
  return async ({ ack, body, action, respond, client }: SlackActionMiddlewareArgs & AllMiddlewareArgs) => {
    await ack();
    if (!isBlockAction(body)) return;
    const b = body as BlockAction;
    const place = actionPlace(b, respond);
    await guarded(deps, place, 'weights', async () => {
      const jobId = jobOfWeightsAction(actionIdOf(action as BlockAction['actions'][number]));
      const job = jobId ? await deps.bot.queue.get(jobId) : undefined;
      if (job?.state !== 'completed') {
        await deps.delivery.ephemeral(
          userErrorReply(
            'That job has expired and is no longer stored.',
            'Run /compose again to make a new one.',
          ),
          place,
        );
        return;
      }
      const target = {
        jobId: job.id,
        channel: place.channel,
        ...(place.threadTs ? { threadTs: place.threadTs } : {}),
      };
      const view = weightsView(job, target, deps.bot.commands.settings.limits);
      if (view) await client.views.open({ trigger_id: b.trigger_id, view });
    });
  };
}
