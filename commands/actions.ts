// Button and select ids: compact `kind:jobId[:slot[:page]]` strings that fit Discord's
// 100-character custom_id and Slack's action_id, decoded back when a user presses them.

import type { JobProgress, ProgressReply, ReplyButton, ReplyRow } from './reply.ts';

export const SIMPLE_ACTION_KINDS = ['rerun', 'seed', 'masks', 'merge', 'cancel'] as const;
export type SimpleActionKind = (typeof SIMPLE_ACTION_KINDS)[number];

/** A binding's index in ComposeRequest.bindings, or the style LoRA. */
export type TweakSlot = number | 'style';

export type ComposeAction =
  /** rerun: same seed; seed: a new seed; masks: show the masks; merge: compare with plain merging. */
  | { kind: SimpleActionKind; jobId: string }
  /** No slot: choose what to change; a slot: choose its LoRA, on page `page` of the list. */
  | { kind: 'tweak'; jobId: string; slot: TweakSlot | null; page: number };

/** Queue job ids: BullMQ's are numbers or UUIDs; 64 leaves room for the rest of the id. */
export const MAX_JOB_ID_LENGTH = 64;
const JOB_ID = /^[A-Za-z0-9_-]{1,64}$/;
const MAX_SLOT = 99;
const MAX_PAGE = 9999;

/** Whether `id` is a job id an action id can carry. */
export function isJobId(id: string): boolean {
  return JOB_ID.test(id);
}

/** A slot as an id spells it ('0'–'99' or 'style'); null for anything else. */
export function readTweakSlot(text: string | undefined): TweakSlot | null {
  if (text === 'style') return 'style';
  return text !== undefined && /^(0|[1-9]\d?)$/.test(text) ? Number(text) : null;
}

/** The id for `action`; throws on a job id or slot no id could carry (a bug, not user input). */
export function encodeActionId(action: ComposeAction): string {
  if (!JOB_ID.test(action.jobId)) {
    throw new RangeError(`job id '${action.jobId}' must be 1–${MAX_JOB_ID_LENGTH} of A–Z a–z 0–9 _ -`);
  }
  if (action.kind !== 'tweak') return `${action.kind}:${action.jobId}`;
  const { slot, page } = action;
  if (slot !== null && slot !== 'style' && !(Number.isInteger(slot) && slot >= 0 && slot <= MAX_SLOT)) {
    throw new RangeError(`tweak slot ${slot} must be 0–${MAX_SLOT} or 'style'`);
  }
  if (!(Number.isInteger(page) && page >= 0 && page <= MAX_PAGE) || (slot === null && page !== 0)) {
    throw new RangeError(`tweak page ${page} must be 0–${MAX_PAGE}, and 0 without a slot`);
  }
  if (slot === null) return `tweak:${action.jobId}`;
  return page === 0 ? `tweak:${action.jobId}:${slot}` : `tweak:${action.jobId}:${slot}:${page}`;
}

/** The action an id names, or null for anything we did not encode (ids come back from the platform). */
export function decodeActionId(id: string): ComposeAction | null {
  if (id.length > 100) return null;
  const parts = id.split(':');
  const [kind, jobId] = parts;
  if (jobId === undefined || !JOB_ID.test(jobId)) return null;
  if ((SIMPLE_ACTION_KINDS as readonly string[]).includes(kind)) {
    return parts.length === 2 ? { kind: kind as SimpleActionKind, jobId } : null;
  }
  if (kind !== 'tweak' || parts.length > 4) return null;
  if (parts.length === 2) return { kind: 'tweak', jobId, slot: null, page: 0 };
  const slot = readTweakSlot(parts[2]);
  if (slot === null) return null;
  if (parts.length === 3) return { kind: 'tweak', jobId, slot, page: 0 };
  return /^[1-9]\d{0,3}$/.test(parts[3]) ? { kind: 'tweak', jobId, slot, page: Number(parts[3]) } : null;
}

function button(
  action: ComposeAction,
  label: string,
  style: ReplyButton['style'],
  disabled = false,
): ReplyButton {
  const b: ReplyButton = { id: encodeActionId(action), label, style };
  return disabled ? { ...b, disabled } : b;
}

/** The buttons under a finished image. */
export function composeResultRow(jobId: string, shown: { masks: boolean; merge: boolean }): ReplyRow {
  return {
    kind: 'buttons',
    buttons: [
      button({ kind: 'rerun', jobId }, 'Rerun', 'secondary'),
      button({ kind: 'seed', jobId }, 'New seed', 'primary'),
      button({ kind: 'masks', jobId }, 'Show masks', 'secondary', shown.masks),
      button({ kind: 'merge', jobId }, 'Compare with merge', 'secondary', shown.merge),
      button({ kind: 'tweak', jobId, slot: null, page: 0 }, 'Tweak', 'secondary'),
    ],
  };
}

/** A job's status message, with a Cancel button while the job is queued or running. */
export function progressReply(jobId: string, progress: JobProgress, ephemeral = false): ProgressReply {
  const cancellable = progress.state === 'queued' || progress.state === 'running';
  return cancellable
    ? {
        kind: 'progress',
        jobId,
        progress,
        ephemeral,
        rows: [{ kind: 'buttons', buttons: [button({ kind: 'cancel', jobId }, 'Cancel', 'danger')] }],
      }
    : { kind: 'progress', jobId, progress, ephemeral };
}

/** Buttons and selects of /loras and /lora: a page of the list, a LoRA's card, "Try it". */
export type LoraAction =
  /** page `page` (0-based) of /loras, searching `query` ('' lists every LoRA) */
  | { kind: 'loras'; page: number; query: string }
  /** the select on a /loras page; the chosen option's value is a LoRA name */
  | { kind: 'lora-card' }
  /** open /compose with this LoRA bound to a subject */
  | { kind: 'lora-try'; lora: string };

const LORA_ACTION_NAME = /^[^\s:]{1,90}$/;

/** The id for `action`; throws when a name or query cannot fit (callers cut queries short first). */
export function encodeLoraActionId(action: LoraAction): string {
  switch (action.kind) {
    case 'lora-card':
      return 'lora-card';
    case 'lora-try':
      if (!LORA_ACTION_NAME.test(action.lora)) {
        throw new RangeError(`LoRA name '${action.lora}' must be 1–90 characters without spaces or ':'`);
      }
      return `lora-try:${action.lora}`;
    case 'loras': {
      const { page, query } = action;
      if (!(Number.isInteger(page) && page >= 0 && page <= MAX_PAGE)) {
        throw new RangeError(`/loras page ${page} must be 0–${MAX_PAGE}`);
      }
      const id = query === '' ? `loras:${page}` : `loras:${page}:${query}`;
      if (id.length > 100) throw new RangeError(`/loras query '${query}' is too long for an action id`);
      return id;
    }
  }
}

/** The /loras or /lora action an id names, or null for anything encodeLoraActionId would not write. */
export function decodeLoraActionId(id: string): LoraAction | null {
  if (id.length > 100) return null;
  if (id === 'lora-card') return { kind: 'lora-card' };
  if (id.startsWith('lora-try:')) {
    const lora = id.slice('lora-try:'.length);
    return LORA_ACTION_NAME.test(lora) ? { kind: 'lora-try', lora } : null;
  }
  const m = /^loras:(0|[1-9]\d{0,3})(?::([\s\S]+))?$/.exec(id);
  return m ? { kind: 'loras', page: Number(m[1]), query: m[2] ?? '' } : null;
}
