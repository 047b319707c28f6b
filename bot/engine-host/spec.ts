// From a parsed /compose request to the engine's CompositionSpec: LoRA names become files
// and trigger words, each subject's span becomes "the n-th occurrence of this word".

import type { ComposeRequest } from '../../commands/compose/index.ts';
import { findWord } from '../../engine/clora/plan.ts';
import { type CompositionSpec, compositionSpec, type LoraRef } from '../../engine/clora/spec.ts';

export interface ResolvedLora {
  ref: LoraRef;
  triggers: string[];
}

/** Which occurrence of `word` starts at `start` (0 when it is the first). */
function occurrenceAt(prompt: string, word: string, start: number): number {
  for (let n = 0; ; n++) {
    const at = findWord(prompt, word, n);
    if (at < 0 || at >= start) return at === start ? n : 0;
  }
}

export function specFromRequest(
  request: ComposeRequest,
  resolve: (name: string) => ResolvedLora,
  overrides: Partial<Pick<CompositionSpec, 'guidance' | 'textEncoderLora'>> = {},
  /** the side of a request that left its size to the model (Engine.defaultSize) */
  defaultSize?: number,
): CompositionSpec {
  if (request.seed === null)
    throw new Error('the request has no seed yet: draw one with withSeed() before running it');
  const style = request.style ? resolve(request.style.lora) : undefined;
  return compositionSpec(
    {
      prompt: request.prompt,
      subjects: request.bindings.map((b) => {
        const lora = resolve(b.lora);
        return {
          word: b.subject,
          lora: lora.ref,
          weight: b.weight,
          triggers: lora.triggers,
          occurrence: occurrenceAt(request.prompt, b.subject, b.span.start),
        };
      }),
      style:
        style && request.style
          ? { lora: style.ref, weight: request.style.weight, triggers: style.triggers }
          : undefined,
      negative: request.negativePrompt,
      seed: request.seed,
      steps: request.steps,
      width: request.width ?? undefined,
      height: request.height ?? undefined,
      cfg: request.cfg,
      sampler: request.sampler,
      method: request.method,
      ...overrides,
    },
    defaultSize,
  );
}
