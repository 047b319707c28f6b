// Variations of a finished request: one binding changed, the seed and all else kept, so
// the user sees what that one change does.

import { closestNames, quotedAlternatives } from './closest.ts';
import { isWritableLoraName } from './lexer.ts';
import {
  type ComposeRequest,
  type ComposeSettings,
  DEFAULT_COMPOSE_SETTINGS,
  type LoraBinding,
  type StyleBinding,
} from './request.ts';

export type ComposeTweak =
  /** Draw `subject` with another LoRA. */
  | { kind: 'swap-lora'; subject: string; lora: string }
  /** Change how strongly `subject`'s LoRA applies. */
  | { kind: 'weight'; subject: string; weight: number }
  /** Add, replace or (with null) drop the style LoRA. */
  | { kind: 'style'; style: StyleBinding | null };

export type TweakErrorCode =
  | 'unknown-subject'
  | 'bad-weight'
  | 'bad-lora-name'
  | 'duplicate-lora'
  | 'too-many-loras';

export interface TweakError {
  code: TweakErrorCode;
  message: string;
  suggestion?: string;
}

export type TweakResult = { ok: true; request: ComposeRequest } | { ok: false; error: TweakError };

function fail(code: TweakErrorCode, message: string, suggestion?: string): TweakResult {
  return { ok: false, error: suggestion === undefined ? { code, message } : { code, message, suggestion } };
}

function checkWeight(weight: number, settings: ComposeSettings): TweakResult | null {
  const { minWeight, maxWeight } = settings.limits;
  if (weight >= minWeight && weight <= maxWeight) return null;
  return fail('bad-weight', `weight ${weight} is out of range: use ${minWeight} to ${maxWeight}`);
}

function checkLoraName(lora: string): TweakResult | null {
  return isWritableLoraName(lora) ? null : fail('bad-lora-name', `'${lora}' is not a LoRA name`);
}

function loraOwner(request: ComposeRequest, lora: string): string | null {
  const key = lora.toLowerCase();
  if (request.style?.lora.toLowerCase() === key) return 'the style';
  const owner = request.bindings.find((b) => b.lora.toLowerCase() === key);
  return owner === undefined ? null : `'${owner.subject}'`;
}

/** A request like `request` with one change; the seed, prompt and options stay as they were. */
export function tweakRequest(
  request: ComposeRequest,
  tweak: ComposeTweak,
  settings: ComposeSettings = DEFAULT_COMPOSE_SETTINGS,
): TweakResult {
  if (tweak.kind === 'style') {
    if (tweak.style === null) return { ok: true, request: { ...request, style: null } };
    const bad = checkLoraName(tweak.style.lora) ?? checkWeight(tweak.style.weight, settings);
    if (bad !== null) return bad;
    const owner = request.bindings.find((b) => b.lora.toLowerCase() === tweak.style?.lora.toLowerCase());
    if (owner !== undefined) {
      return fail('duplicate-lora', `LoRA '${tweak.style.lora}' already draws '${owner.subject}'`);
    }
    if (request.style === null && request.bindings.length + 1 > settings.limits.maxLoras) {
      return fail(
        'too-many-loras',
        `no room for a style: at most ${settings.limits.maxLoras} LoRAs per image`,
      );
    }
    return { ok: true, request: { ...request, style: { ...tweak.style } } };
  }

  const key = tweak.subject.toLowerCase();
  const index = request.bindings.findIndex((b) => b.subject.toLowerCase() === key);
  if (index === -1) {
    const near = closestNames(
      tweak.subject,
      request.bindings.map((b) => b.subject),
    );
    return fail(
      'unknown-subject',
      near.length > 0
        ? `'${tweak.subject}' is not a subject of this picture — did you mean ${quotedAlternatives(near)}?`
        : `'${tweak.subject}' is not a subject of this picture`,
      near[0],
    );
  }
  const binding = request.bindings[index];
  let changed: LoraBinding;
  if (tweak.kind === 'weight') {
    const bad = checkWeight(tweak.weight, settings);
    if (bad !== null) return bad;
    changed = { ...binding, span: { ...binding.span }, weight: tweak.weight };
  } else {
    const bad = checkLoraName(tweak.lora);
    if (bad !== null) return bad;
    const owner =
      tweak.lora.toLowerCase() === binding.lora.toLowerCase() ? null : loraOwner(request, tweak.lora);
    if (owner !== null) return fail('duplicate-lora', `LoRA '${tweak.lora}' already draws ${owner}`);
    changed = { ...binding, span: { ...binding.span }, lora: tweak.lora };
  }
  const bindings = request.bindings.map((b, i) => (i === index ? changed : b));
  return { ok: true, request: { ...request, bindings } };
}
