// The "Weights…" button under a finished image, and the weight form (commands/compose/
// weight-form.ts) it opens as a modal: pick a subject, type its LoRA's new weight, and the job
// reruns with that one change (same seed).

import type { ViewOutput } from '@slack/bolt';
import type { ComposeLimits } from '../../commands/compose/index.ts';
import { weightForm } from '../../commands/compose/index.ts';
import type { MessageReply, ReplyButton } from '../../commands/reply.ts';
import type { ComposeRecord } from '../../commands/service.ts';
import { renderForm } from './blocks.ts';

export const WEIGHTS_VIEW = 'weights';
const PREFIX = 'weights:';

export function weightsActionId(jobId: string): string {
  return `${PREFIX}${jobId}`;
}

export function jobOfWeightsAction(id: string): string | null {
  return id.startsWith(PREFIX) && id.length > PREFIX.length ? id.slice(PREFIX.length) : null;
}

/** The result reply with a Weights… button after Tweak, when the job bound any subject. */
export function withWeightsButton(reply: MessageReply, job: ComposeRecord): MessageReply {
  if (job.data.request.bindings.length === 0 || !reply.rows) return reply;
  const weights: ReplyButton = { id: weightsActionId(job.id), label: 'Weights…', style: 'secondary' };
  return {
    ...reply,
    rows: reply.rows.map((row) =>
      row.kind === 'buttons' && row.buttons.some((b) => b.id.startsWith('tweak:'))
        ? { kind: 'buttons', buttons: [...row.buttons, weights] }
        : row,
    ),
  };
}

/** Where the rerun's status goes, carried through the modal. */
export interface WeightsTarget {
  jobId: string;
  channel: string;
  threadTs?: string;
}

/** The weight form for any subject of the job, as a modal; null when nothing has a weight. */
export function weightsView(job: ComposeRecord, target: WeightsTarget, limits: ComposeLimits) {
  const form = weightForm(job.id, job.data.request, null, limits);
  return form && renderForm(form, WEIGHTS_VIEW, JSON.stringify(target));
}

export function weightsTarget(view: ViewOutput): WeightsTarget | null {
  try {
    const t = JSON.parse(view.private_metadata) as Partial<WeightsTarget>;
    if (typeof t.jobId !== 'string' || typeof t.channel !== 'string') return null;
    return {
      jobId: t.jobId,
      channel: t.channel,
      ...(typeof t.threadTs === 'string' ? { threadTs: t.threadTs } : {}),
    };
  } catch {
    return null;
  }
}
