// The checks a job would fail on the engine, run before it is queued: each subject must lie
// within CLIP's 77 tokens in every branch prompt (trigger words included), and a prompt that
// is cut says what was cut. Uses the engine's own planning and the model's tokenizer.

import type { ComposeRequest } from '../../commands/compose/index.ts';
import type { Preflight } from '../../commands/service.ts';
import { planComposition } from '../../engine/clora/plan.ts';
import { SpecError } from '../../engine/clora/spec.ts';
import { type ClipTokenizer, findPhrase, type TokenizedPrompt } from '../../engine/tokenizer/index.ts';
import type { LoraLibrary } from '../library/index.ts';
import { specFromRequest } from './spec.ts';

/** The words truncation left out of a prompt, or undefined when nothing was cut. */
export function cutWords(tokens: TokenizedPrompt): string | undefined {
  if (!tokens.truncated) return undefined;
  const words = tokens.normalized.split(' ');
  const kept = tokens.words.length;
  // A word whose tokens were cut part-way counts as cut.
  const first = kept > 0 && tokens.words[kept - 1].truncated ? kept - 1 : kept;
  return words.slice(first).join(' ');
}

export function composePreflight(
  tokenizer: ClipTokenizer,
  library: Pick<LoraLibrary, 'get'>,
): (request: ComposeRequest) => Preflight {
  return (request) => {
    const spec = specFromRequest({ ...request, seed: request.seed ?? 0 }, (name) => {
      const entry = library.get(name);
      return { ref: entry?.ref ?? { name, path: name }, triggers: [...(entry?.triggers ?? [])] };
    });
    const base = tokenizer.encode(request.prompt);
    const read = tokenizer.maxLength - 2;
    for (const s of spec.subjects) {
      if (findPhrase(base, s.word).length > (s.occurrence ?? 0)) continue;
      return {
        ok: false,
        message:
          `the subject '${s.word}' lies past the ${read} tokens CLIP reads (the prompt has ` +
          `${base.idsUntruncated.length - 2}), so its LoRA would have nothing to draw: move it earlier or shorten the prompt`,
      };
    }
    let plan: ReturnType<typeof planComposition>;
    try {
      plan = planComposition(spec, tokenizer);
    } catch (e) {
      if (e instanceof SpecError) return { ok: false, message: e.message };
      throw e;
    }
    const notes: string[] = [];
    const [first, ...others] = plan.branches;
    const cut = cutWords(first.tokens);
    if (cut) notes.push(`CLIP reads ${read} tokens; cut from the prompt: “${cut}”`);
    const branchCut = others.map((b) => cutWords(b.tokens)).find((c) => c !== undefined);
    if (branchCut && !cut)
      notes.push(`CLIP reads ${read} tokens; with the LoRAs' trigger words, cut: “${branchCut}”`);
    const negative = cutWords(plan.negative);
    if (negative) notes.push(`cut from the negative prompt: “${negative}”`);
    return { ok: true, notes };
  };
}
