// The pictures of one finished composition: the image, and on request the mask overlay
// (which LoRA owns which pixels) and the per-token attention maps.

import type { CompositionResult } from '../../engine/clora/engine.ts';
import { attentionMapsSheet } from './attention.ts';
import { type EncodedImage, encodeImage } from './encode.ts';
import { decodedImage } from './image.ts';
import { DEFAULT_MAX_BYTES } from './limits.ts';
import { maskOverlay } from './masks.ts';

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

export async function renderComposition(
  result: CompositionResult,
  options: { masks?: boolean; maps?: boolean; maxBytes?: number } = {},
): Promise<CompositionPictures> {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  const rgb = decodedImage(result.image, result.width, result.height);
  const out: CompositionPictures = {
    image: await encodeImage(rgb.data, rgb.width, rgb.height, { maxBytes }),
  };
  const masks = maskSet(result);
  if (options.masks && masks) out.masks = await maskOverlay(rgb, masks, { maxBytes });
  if (options.maps && result.maps.length > 0) {
    out.maps = await attentionMapsSheet(
      {
        rows: result.grid.rows,
        cols: result.grid.cols,
        maps: result.maps.map((m) => ({ label: m.label, values: m.values })),
      },
      { maxBytes },
    );
  }
  return out;
}
