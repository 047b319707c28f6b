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
  for (const name of names) {
    const key = name.toLowerCase();
    if (!byKey.has(key)) byKey.set(key, name);
  }
  let located = source;
  const locate = (): ComposeSource => {
    if (located !== undefined) return located;
    const input = formatCompose(request, settings);
    const reparsed = parseCompose(input, settings);
    located = reparsed.ok ? reparsed.source : { input, bindings: [], style: null };
    return located;
  };

  const unknown = (lora: string, span: (s: ComposeSource) => TextSpan | undefined): ParseResult => {
    const near = closestNames(lora, names);
    const where = locate();
    return {
      ok: false,
      error: composeError(
        'unknown-lora',
        near.length > 0
          ? `unknown LoRA '${lora}' — did you mean ${quotedAlternatives(near)}?`
          : `unknown LoRA '${lora}': /loras lists the ones this bot has`,
        span(where) ?? { start: 0, end: where.input.length },
        near.length > 0 ? `<${near[0]}>` : undefined,
      ),
    };
  };

  const bindings = [];
  for (const [i, binding] of request.bindings.entries()) {
    const name = byKey.get(binding.lora.toLowerCase());
    if (name === undefined) return unknown(binding.lora, (s) => s.bindings[i]?.lora);
    bindings.push(name === binding.lora ? binding : { ...binding, lora: name });
  }
  let style = request.style;
  if (style !== null) {
    const name = byKey.get(style.lora.toLowerCase());
    if (name === undefined) return unknown(style.lora, (s) => s.style?.lora);
    if (name !== style.lora) style = { ...style, lora: name };
  }
  return { ok: true, request: { ...request, bindings, style }, source: locate() };
}
