// The recipe a composition's pictures carry: the spec as the engine ran it, the command, and the hashes of the
// model and LoRA files (the LoRAs' come from reading them; the model's is streamed once and remembered).
import { basename } from 'node:path';
import type { Engine } from '../../engine/clora/engine.ts';
import type { CompositionSpec } from '../../engine/clora/spec.ts';
import { type Recipe, recipeFromSpec } from '../render/recipe.ts';
import { cachedSha256 } from './file-hash.ts';

export async function compositionRecipe(
  engine: Pick<Engine, 'checkpoint' | 'loadLora'>,
  spec: CompositionSpec,
  command: string,
): Promise<Recipe> {
  const { source, layout } = engine.checkpoint;
  const refs = [...spec.subjects.map((s) => s.lora), ...(spec.style ? [spec.style.lora] : [])];
  // A diffusers folder has no one file that A1111 or Civitai would hash.
  const sha256 = layout === 'single-file' ? await cachedSha256(source) : undefined;
  return recipeFromSpec(spec, {
    command,
    model: { name: basename(source), ...(sha256 ? { sha256 } : {}) },
    loraSha256: new Map(refs.map((ref) => [ref.path, engine.loadLora(ref).sha256])),
  });
}
