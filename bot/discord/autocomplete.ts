// Autocomplete answers: Discord asks while the user types and shows up to 25 choices whose
// values (≤ 100 characters) replace the whole option. So a LoRA being typed inside the prompt
// (`cat:<ta`) is completed by offering whole prompts, one per matching LoRA.

import { type ComposeLimits, completeName, DEFAULT_COMPOSE_LIMITS } from '../../commands/compose/index.ts';

export interface Choice {
  name: string;
  value: string;
}

/** Discord's limits on autocomplete answers. */
export const CHOICE_LIMITS = Object.freeze({ count: 25, name: 100, value: 100 });

// A binding being typed at the end: `subject:<partial` or `subject:partial` (also `style:`).
const PARTIAL_BINDING = /:(<?)([^\s<>:@"]*)$/;

function shown(text: string): string {
  // The name is what the user reads: keep the end, where they are typing.
  return text.length <= CHOICE_LIMITS.name ? text : `…${text.slice(-(CHOICE_LIMITS.name - 1))}`;
}

/** Whole-prompt choices completing the LoRA typed at the end of `typed`. */
export function promptChoices(typed: string, names: readonly string[]): Choice[] {
  const m = PARTIAL_BINDING.exec(typed);
  if (m) {
    const head = typed.slice(0, m.index);
    const choices = completeName(m[2], names, CHOICE_LIMITS.count)
      .map((name) => `${head}:<${name}>`)
      .filter((value) => value.length <= CHOICE_LIMITS.value)
      .map((value) => ({ name: shown(value), value }));
    if (choices.length > 0) return choices;
  }
  if (typed.trim() === '') {
    return names
      .slice(0, CHOICE_LIMITS.count)
      .map((name) => `subject:<${name}>`)
      .filter((value) => value.length <= CHOICE_LIMITS.value)
      .map((value) => ({ name: value, value }));
  }
  // Nothing to complete: offer what was typed, so Enter keeps it.
  return typed.length <= CHOICE_LIMITS.value ? [{ name: shown(typed), value: typed }] : [];
}

/** Choices for an option that takes one LoRA name. */
export function loraChoices(typed: string, names: readonly string[]): Choice[] {
  const partial = typed.trim().replace(/^<|>$/g, '');
  const found =
    partial === '' ? names.slice(0, CHOICE_LIMITS.count) : completeName(partial, names, CHOICE_LIMITS.count);
  return found.filter((n) => n.length <= CHOICE_LIMITS.value).map((n) => ({ name: shown(n), value: n }));
}

const RATIOS: readonly [number, number][] = [
  [1, 1],
  [2, 3],
  [3, 2],
  [3, 4],
  [4, 3],
  [9, 16],
  [16, 9],
  [1, 2],
  [2, 1],
];

/**
 * WxH sizes within the limits that start with what was typed: first, per common ratio, the one
 * nearest the model's own area (`defaultSide`², when known), then squares and ratios by side.
 */
export function sizeChoices(
  typed: string,
  limits: Pick<ComposeLimits, 'minSide' | 'maxSide'> & Partial<Pick<ComposeLimits, 'sideMultiple'>>,
  defaultSide: number | null = null,
): Choice[] {
  const { minSide, maxSide, sideMultiple = DEFAULT_COMPOSE_LIMITS.sideMultiple } = limits;
  const sides: number[] = [];
  for (let s = minSide; s <= maxSide; s += sideMultiple) sides.push(s);
  const byRatio = RATIOS.map(([a, b]) =>
    sides
      .map((w) => [w, (w * b) / a] as const)
      .filter(([, h]) => Number.isInteger(h) && h % sideMultiple === 0 && h >= minSide && h <= maxSide),
  );
  const sizes: string[] = [];
  // Off the model's own area a picture degrades (repeated subjects), so offer that area first.
  if (defaultSide !== null) {
    const off = ([w, h]: readonly [number, number]) => Math.abs(Math.log((w * h) / defaultSide ** 2));
    for (const list of byRatio) {
      const nearest = [...list].sort((p, q) => off(p) - off(q))[0];
      if (nearest) sizes.push(`${nearest[0]}x${nearest[1]}`);
    }
  }
  for (const list of byRatio) for (const [w, h] of list) sizes.push(`${w}x${h}`);
  const want = typed.trim().toLowerCase().replace(/[×*]/g, 'x');
  return [...new Set(sizes)]
    .filter((s) => s.startsWith(want))
    .slice(0, CHOICE_LIMITS.count)
    .map((s) => ({ name: s, value: s }));
}
