// Checks a request's LoRA names against the LoRAs this bot has, with "did you mean" for typos.

import { closestNames, quotedAlternatives } from './closest.ts';
import { type ComposeSource, composeError, type ParseResult } from './errors.ts';
import { formatCompose } from './format.ts';
import { parseCompose } from './parse.ts';
import type { ComposeRequest, ComposeSettings, TextSpan } from './request.ts';
import { DEFAULT_COMPOSE_SETTINGS } from './request.ts';

/** The LoRAs a bot can load; names are what users type between < and >. */
export interface LoraCatalog {
  names(): readonly string[];
  /** A LoRA the bot has but cannot use, with the one true reason (the same /loras and its card give). */
  unusable?(name: string): { name: string; reason: string } | undefined;
}

/** A name with case, `_`, `-` and spaces folded: a file name finds the library's slug. */
export function foldLoraName(name: string): string {
  return name
    .toLowerCase()
    .replace(/[\s_-]+/g, '-')
    .replace(/^-+|-+$/g, '');
}

/** A LoRA name the user typed that matched a catalog name only once folded. */
export interface LoraRename {
  typed: string;
  lora: string;
}

/** A catalog over a fixed list of names. */
export function loraCatalog(names: Iterable<string>): LoraCatalog {
  const list = [...names];
  return { names: () => list };
}

/**
 * The request with each LoRA name replaced by the catalog's spelling (matched without
 * regard to case), or an unknown-LoRA error with the closest names. Without `source`
 * (a request that was not just parsed) spans point into `formatCompose(request, settings)`.
 */
export function resolveLoras(
  request: ComposeRequest,
  catalog: LoraCatalog,
  source?: ComposeSource,
  settings: ComposeSettings = DEFAULT_COMPOSE_SETTINGS,
): ParseResult {
  const names = catalog.names();
  const byKey = new Map<string, string>();
  const byFold = new Map<string, string[]>();
  for (const name of names) {
    const key = name.toLowerCase();
    if (!byKey.has(key)) byKey.set(key, name);
    const fold = foldLoraName(name);
    byFold.set(fold, [...(byFold.get(fold) ?? []), name]);
  }
  const renamed: LoraRename[] = [];
  // Exact (ignoring case) first; then folded, when that names exactly one LoRA.
  const find = (typed: string): string | undefined => {
    const exact = byKey.get(typed.toLowerCase());
    if (exact !== undefined) return exact;
    const folded = byFold.get(foldLoraName(typed));
    if (folded?.length !== 1) return undefined;
    renamed.push({ typed, lora: folded[0] });
    return folded[0];
  };
  let located = source;
  const locate = (): ComposeSource => {
    if (located !== undefined) return located;
    const input = formatCompose(request, settings);
    const reparsed = parseCompose(input, settings);
    located = reparsed.ok ? reparsed.source : { input, bindings: [], style: null };
    return located;
  };

  const unknown = (lora: string, span: (s: ComposeSource) => TextSpan | undefined): ParseResult => {
    const where = locate();
    const at = span(where) ?? { start: 0, end: where.input.length };
    const refused = catalog.unusable?.(lora);
    if (refused) {
      return {
        ok: false,
        error: composeError(
          'unusable-lora',
          `the LoRA '${refused.name}' cannot be used: ${refused.reason} (/lora ${refused.name} shows its card)`,
          at,
        ),
      };
    }
    const near = closestNames(lora, names);
    // A bare `word:word` may have been meant as text: say how to keep it.
    const wordStart = where.input.slice(0, at.start).search(/\S*$/);
    const asText =
      where.input[at.start] === '<'
        ? ''
        : `; if ${where.input.slice(wordStart, at.end)} is prompt text, quote it: "${where.input.slice(wordStart, at.end)}"`;
    return {
      ok: false,
      error: composeError(
        'unknown-lora',
        near.length > 0
          ? `unknown LoRA '${lora}' — did you mean ${quotedAlternatives(near)}?${asText}`
          : `unknown LoRA '${lora}': /loras lists the ones this bot has${asText}`,
        at,
        near.length > 0 ? `<${near[0]}>` : undefined,
      ),
    };
  };

  const bindings = [];
  for (const [i, binding] of request.bindings.entries()) {
    const name = find(binding.lora);
    if (name === undefined) return unknown(binding.lora, (s) => s.bindings[i]?.lora);
    bindings.push(name === binding.lora ? binding : { ...binding, lora: name });
  }
  let style = request.style;
  if (style !== null) {
    const name = find(style.lora);
    if (name === undefined) return unknown(style.lora, (s) => s.style?.lora);
    if (name !== style.lora) style = { ...style, lora: name };
  }
  return {
    ok: true,
    request: { ...request, bindings, style },
    source: locate(),
    ...(renamed.length > 0 ? { renamed } : {}),
  };
}
