// The Slack-only "Weights…" button under a finished image and the modal it opens: pick a
// subject, type its LoRA's new weight, and the job reruns with that one change (same seed).

import type { types, ViewOutput } from '@slack/bolt';
import type { ComposeTweak } from '../../commands/compose/index.ts';
import { DEFAULT_COMPOSE_SETTINGS } from '../../commands/compose/index.ts';
import type { MessageReply, ReplyButton } from '../../commands/reply.ts';
import type { ComposeRecord } from '../../commands/service.ts';
import { clip } from './blocks.ts';

export const WEIGHTS_VIEW = 'weights';
const PREFIX = 'weights:';
const SUBJECT_BLOCK = 'subject';
const WEIGHT_BLOCK = 'weight';

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

export function weightsView(job: ComposeRecord, target: WeightsTarget): types.ModalView {
  const bindings = job.data.request.bindings;
  const options = bindings.map((b, i) => ({
    text: { type: 'plain_text' as const, text: clip(`${b.subject} (${b.lora} @${b.weight})`, 75) },
    value: String(i),
  }));
  const { minWeight, maxWeight } = DEFAULT_COMPOSE_SETTINGS.limits;
  return {
    type: 'modal',
    callback_id: WEIGHTS_VIEW,
    private_metadata: JSON.stringify(target),
    title: { type: 'plain_text', text: 'Change a weight' },
    submit: { type: 'plain_text', text: 'Compose' },
    close: { type: 'plain_text', text: 'Cancel' },
    blocks: [
      {
        type: 'section',
        text: { type: 'mrkdwn', text: 'Same seed and prompt; only this LoRA’s strength changes.' },
      },
      {
        type: 'input',
        block_id: SUBJECT_BLOCK,
        label: { type: 'plain_text', text: 'Subject' },
        element: {
          type: 'static_select',
          action_id: SUBJECT_BLOCK,
          options,
          initial_option: options[0],
        },
      },
      {
        type: 'input',
        block_id: WEIGHT_BLOCK,
        label: { type: 'plain_text', text: `Weight (${minWeight}–${maxWeight})` },
        element: {
          type: 'number_input',
          action_id: WEIGHT_BLOCK,
          is_decimal_allowed: true,
          initial_value: String(bindings[0]?.weight ?? 1),
          min_value: String(minWeight),
          max_value: String(maxWeight),
        },
      },
    ],
  };
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

/** The tweak a submitted modal asks for, or the error to show beside the weight field. */
export function readWeights(
  view: ViewOutput,
  job: ComposeRecord,
): { ok: true; tweak: ComposeTweak } | { ok: false; errors: Record<string, string> } {
  const values = view.state.values;
  const slot = Number(values[SUBJECT_BLOCK]?.[SUBJECT_BLOCK]?.selected_option?.value);
  const binding = job.data.request.bindings[slot];
  if (!binding) return { ok: false, errors: { [SUBJECT_BLOCK]: 'Pick one of the subjects.' } };
  const text = values[WEIGHT_BLOCK]?.[WEIGHT_BLOCK]?.value ?? '';
  const weight = Number(text);
  if (text.trim() === '' || !Number.isFinite(weight))
    return { ok: false, errors: { [WEIGHT_BLOCK]: 'Type a number, e.g. 0.8.' } };
  return { ok: true, tweak: { kind: 'weight', subject: binding.subject, weight } };
}

export const WEIGHTS_FIELDS = { subject: SUBJECT_BLOCK, weight: WEIGHT_BLOCK } as const;
