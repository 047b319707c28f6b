// The selects behind the Tweak button: first which binding to change, then its new LoRA,
// a page of the catalog at a time.

import { encodeActionId, type TweakSlot } from '../actions.ts';
import { pageOf, REPLY_LIMITS, type ReplyRow, type SelectOption, truncate } from '../reply.ts';
import type { ComposeRequest } from './request.ts';
import type { ComposeTweak } from './tweak.ts';

/** The select value meaning "drop the style"; '<' can never be in a LoRA name. */
export const NO_STYLE_VALUE = '<none>';

/** Which binding to change: one option per subject, plus the style (to change or drop it). */
export function tweakSlotRow(jobId: string, request: ComposeRequest): ReplyRow {
  const options: SelectOption[] = request.bindings.map((b, i) => ({
    label: truncate(b.subject, REPLY_LIMITS.optionLabel),
    value: String(i),
    description: truncate(
      `now ${b.lora}${b.weight === 1 ? '' : ` @${b.weight}`}`,
      REPLY_LIMITS.optionDescription,
    ),
  }));
  options.push({
    label: 'style',
    value: 'style',
    description:
      request.style === null
        ? 'add a style LoRA'
        : truncate(`now ${request.style.lora}`, REPLY_LIMITS.optionDescription),
  });
  return {
    kind: 'select',
    select: {
      id: encodeActionId({ kind: 'tweak', jobId, slot: null, page: 0 }),
      placeholder: 'Change which LoRA?',
      options: options.slice(0, 25),
    },
  };
}

/**
 * What `slot` can switch to: LoRAs no other slot of the request uses (each LoRA draws one
 * subject), the current one included, and dropping the style while something else stays bound.
 */
export function tweakChoices(
  slot: TweakSlot,
  request: ComposeRequest,
  loraNames: readonly string[],
): string[] {
  const others = new Set(
    [
      ...request.bindings.filter((_, i) => i !== slot).map((b) => b.lora),
      ...(slot === 'style' ? [] : [request.style?.lora]),
    ]
      .filter((n) => n !== undefined)
      .map((n) => n.toLowerCase()),
  );
  // A name longer than a select value can hold cannot be offered; /compose still takes it.
  const offered = loraNames.filter(
    (n) => n.length <= REPLY_LIMITS.optionValue && !others.has(n.toLowerCase()),
  );
  const canDropStyle = request.bindings.length > 0 || request.method === 'none';
  return slot === 'style' && request.style !== null && canDropStyle ? [NO_STYLE_VALUE, ...offered] : offered;
}

/** The LoRAs `slot` can switch to (tweakChoices), one page at a time; the current one is marked. */
export function tweakLoraRow(
  jobId: string,
  slot: TweakSlot,
  request: ComposeRequest,
  loraNames: readonly string[],
  page: number,
): ReplyRow {
  const current = slot === 'style' ? request.style?.lora : request.bindings[slot]?.lora;
  const { items, page: at, pageCount } = pageOf(tweakChoices(slot, request, loraNames), page);
  const id = (p: number) => encodeActionId({ kind: 'tweak', jobId, slot, page: p });
  const subject = slot === 'style' ? 'the style' : (request.bindings[slot]?.subject ?? 'this subject');
  return {
    kind: 'select',
    select: {
      id: id(at),
      placeholder: `New LoRA for ${subject}${pageCount > 1 ? ` (page ${at + 1}/${pageCount})` : ''}`,
      options: items.map((name) => {
        if (name === NO_STYLE_VALUE)
          return { label: 'no style', value: name, description: 'drop the style LoRA' };
        const label = truncate(name, REPLY_LIMITS.optionLabel);
        return name === current ? { label, value: name, selected: true } : { label, value: name };
      }),
      paging: {
        page: at,
        pageCount,
        previousId: at > 0 ? id(at - 1) : null,
        nextId: at + 1 < pageCount ? id(at + 1) : null,
      },
    },
  };
}

/** The tweak a choice in tweakLoraRow's select asks for, or null if the slot is gone. */
export function tweakFromChoice(
  request: ComposeRequest,
  slot: TweakSlot,
  value: string,
): ComposeTweak | null {
  if (slot === 'style') {
    if (value === NO_STYLE_VALUE) return { kind: 'style', style: null };
    return { kind: 'style', style: { lora: value, weight: request.style?.weight ?? 1 } };
  }
  const binding = request.bindings[slot];
  return binding === undefined ? null : { kind: 'swap-lora', subject: binding.subject, lora: value };
}
