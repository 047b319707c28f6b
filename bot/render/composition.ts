// The pictures of one finished composition: the image, and on request the mask overlay
// (which LoRA owns which pixels) and the per-token attention maps.

import type { CompositionResult } from '../../engine/clora/engine.ts';
import { attentionMapsSheet } from './attention.ts';
import { type EncodedImage, encodeImage } from './encode.ts';
import { decodedImage } from './image.ts';
import { DEFAULT_MAX_BYTES } from './limits.ts';
import { maskOverlay } from './masks.ts';
import { type Recipe, recipeText } from './recipe.ts';

export interface CompositionPictures {
  image: EncodedImage;
  masks?: EncodedImage;
  maps?: EncodedImage;
}

export function maskSet(result: CompositionResult) {
  if (result.masks.length < 2) return undefined;
  const [background, ...loras] = result.masks;
  return {
    rows: result.grid.rows,
    cols: result.grid.cols,
    background,
    loras: loras.map((mask, i) => {
      const s = result.spec.subjects[i];
      return { name: s ? `${s.word}: ${s.lora.name}` : `LoRA ${i + 1}`, mask };
    }),
  };
}

/** What P0, P1 … in the maps' labels stand for: the prompt of each branch, the word's map was read in. */
export function promptNotes(result: CompositionResult): string[] {
  return result.prompts.map((prompt, i) => {
    const s = result.spec.subjects[i - 1];
    const whose = i === 0 ? 'the base prompt' : s ? `${s.word} with ${s.lora.name}` : `branch ${i}`;
    return `P${i} = ${whose}: "${prompt}"`;
  });
}

export async function renderComposition(
  result: CompositionResult,
  options: { masks?: boolean; maps?: boolean; maxBytes?: number; recipe?: Recipe } = {},
): Promise<CompositionPictures> {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  // Every picture carries the recipe, so any of them dropped back into the bot gives the command.
  const text = options.recipe ? recipeText(options.recipe) : undefined;
  const rgb = decodedImage(result.image, result.width, result.height);
  const out: CompositionPictures = {
    image: await encodeImage(rgb.data, rgb.width, rgb.height, { maxBytes, text }),
  };
  const masks = maskSet(result);
  if (options.masks && masks) out.masks = await maskOverlay(rgb, masks, { maxBytes, text });
  if (options.maps && result.maps.length > 0) {
    out.maps = await attentionMapsSheet(
      {
        rows: result.grid.rows,
        cols: result.grid.cols,
        maps: result.maps.map((m) => ({ label: m.label, values: m.values })),
        notes: promptNotes(result),
      },
      { maxBytes, text },
    );
  }
  return out;
}
