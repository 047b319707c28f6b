// The weight modal's Compose: a bad value is shown beside its field (the modal stays open);
// a good one closes it and the rerun's status appears where the picture is.

import type { AllMiddlewareArgs, SlackViewMiddlewareArgs } from '@slack/bolt';
import { readWeightForm, WEIGHT_FIELDS } from '../../../../commands/compose/index.ts';
import type { ChatContext } from '../../../../commands/service.ts';
import { formValues } from '../../blocks.ts';
import type { Place } from '../../context.ts';
import { weightsTarget } from '../../weights.ts';
import type { SlackDeps } from '../deps.ts';

export function weightsSubmission(deps: SlackDeps) {
  return async ({ ack, body, view }: SlackViewMiddlewareArgs & AllMiddlewareArgs): Promise<void> => {
    const target = weightsTarget(view);
    const job = target ? await deps.bot.queue.get(target.jobId) : undefined;
    if (!target || !job) {
      await ack({
        response_action: 'errors',
        errors: { [WEIGHT_FIELDS.weight]: 'That job has expired; run /compose again.' },
      });
      return;
    }
    const gate = deps.limiter.take(body.user.id);
    if (!gate.ok) {
      await ack({
        response_action: 'errors',
        errors: { [WEIGHT_FIELDS.weight]: gate.reply.text ?? 'Slow down.' },
      });
      return;
    }
    const read = readWeightForm(job.data.request, null, formValues(view));
    if (!read.ok) {
      await ack({ response_action: 'errors', errors: { [read.problem.field]: read.problem.message } });
      return;
    }
    const ctx: ChatContext = {
      platform: 'slack',
      userId: body.user.id,
      userName: body.user.name,
      scope: body.team?.id ?? body.user.team_id ?? 'slack',
      channel: target.channel,
      isAdmin: false,
      message: { channel: target.channel },
    };
    // Enqueued before the ack, so a refusal can be shown in the modal itself.
    const outcome = await deps.bot.commands.tweak(job, read.tweak, ctx);
    if (!outcome.jobId) {
      const text = outcome.reply.kind === 'message' ? (outcome.reply.text ?? '') : '';
      await ack({ response_action: 'errors', errors: { [WEIGHT_FIELDS.weight]: text.replace(/^⚠️ /, '') } });
      return;
    }
    await ack();
    const place: Place = { channel: target.channel, userId: body.user.id };
    if (target.threadTs) place.threadTs = target.threadTs;
    await deps.delivery.deliver(outcome, place);
  };
}
