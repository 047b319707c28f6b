// Changing one LoRA's weight, same seed: one form, which each adapter renders as its modal.
// Given the slot it asks for that LoRA's weight; without one it also asks which subject.

import { isJobId, readTweakSlot, type TweakSlot } from '../actions.ts';
import type { FormField, FormProblem, FormValues, ReplyForm, SelectOption } from '../reply.ts';
import type { ComposeLimits, ComposeRequest } from './request.ts';
import type { ComposeTweak } from './tweak.ts';

export const WEIGHT_FIELDS = { subject: 'subject', weight: 'weight' } as const;

/** `weight:<job>:<slot>`, or `weight:<job>` for the form that asks which subject. */
export function weightFormId(jobId: string, slot: TweakSlot | null): string {
  return slot === null ? `weight:${jobId}` : `weight:${jobId}:${slot}`;
}

export function decodeWeightFormId(id: string): { jobId: string; slot: TweakSlot | null } | null {
  const [kind, jobId, slotText, ...rest] = id.split(':');
  if (kind !== 'weight' || jobId === undefined || !isJobId(jobId) || rest.length > 0) return null;
  if (slotText === undefined) return { jobId, slot: null };
  const slot = readTweakSlot(slotText);
  return slot === null ? null : { jobId, slot };
}

/** A LoRA of the request whose weight can change. */
interface Weighted {
  slot: TweakSlot;
  /** who the weight belongs to, as the user reads it */
  subject: string;
  lora: string;
  weight: number;
}

function weightedOf(request: ComposeRequest, slot: TweakSlot): Weighted | undefined {
  if (slot === 'style') return request.style ? { slot, subject: 'the style', ...request.style } : undefined;
  const binding = request.bindings[slot];
  return binding && { slot, subject: binding.subject, lora: binding.lora, weight: binding.weight };
}

function weighted(request: ComposeRequest): Weighted[] {
  const slots: TweakSlot[] = [...request.bindings.keys(), 'style'];
  return slots.map((slot) => weightedOf(request, slot)).filter((w) => w !== undefined);
}

/** The form for `slot` (or, with null, for any subject); null when there is no weight to change. */
export function weightForm(
  jobId: string,
  request: ComposeRequest,
  slot: TweakSlot | null,
  limits: Pick<ComposeLimits, 'minWeight' | 'maxWeight'>,
): ReplyForm | null {
  const choices =
    slot === null ? weighted(request) : [weightedOf(request, slot)].filter((w) => w !== undefined);
  const first = choices[0];
  if (!first) return null;
  const fields: FormField[] = [];
  if (slot === null) {
    const options: SelectOption[] = choices.map((w) => ({
      label: `${w.subject} (${w.lora} @${w.weight})`,
      value: String(w.slot),
    }));
    fields.push({
      kind: 'choice',
      id: WEIGHT_FIELDS.subject,
      label: 'Subject',
      options,
      initial: options[0].value,
    });
  }
  fields.push({
    kind: 'number',
    id: WEIGHT_FIELDS.weight,
    label: `Weight, ${limits.minWeight}–${limits.maxWeight}`,
    hint: '1 is the LoRA as trained; the seed and all else stay the same',
    min: limits.minWeight,
    max: limits.maxWeight,
    initial: first.weight,
  });
  return {
    id: weightFormId(jobId, slot),
    title: slot === null ? 'Change a weight' : `Weight for ${first.subject}`,
    intro: 'Same seed and prompt; only this LoRA’s strength changes.',
    submitLabel: 'Compose',
    fields,
  };
}

/** The tweak a submitted weight form asks for, or what to fix (the range is checked by tweakRequest). */
export function readWeightForm(
  request: ComposeRequest,
  slot: TweakSlot | null,
  values: FormValues,
): { ok: true; tweak: ComposeTweak } | { ok: false; problem: FormProblem } {
  const chosen = slot ?? readTweakSlot(values[WEIGHT_FIELDS.subject]);
  const target = chosen === null ? undefined : weightedOf(request, chosen);
  if (!target) {
    const message =
      slot === null ? 'Pick one of the subjects.' : 'That subject is no longer part of the job.';
    return { ok: false, problem: { field: WEIGHT_FIELDS.subject, message } };
  }
  const text = (values[WEIGHT_FIELDS.weight] ?? '').trim();
  const weight = Number(text);
  if (text === '' || !Number.isFinite(weight)) {
    const message =
      text === '' ? 'Type a weight, e.g. 0.8.' : `'${text}' is not a number: type a weight such as 0.8.`;
    return { ok: false, problem: { field: WEIGHT_FIELDS.weight, message } };
  }
  const tweak: ComposeTweak =
    target.slot === 'style'
      ? { kind: 'style', style: { lora: target.lora, weight } }
      : { kind: 'weight', subject: target.subject, weight };
  return { ok: true, tweak };
}
