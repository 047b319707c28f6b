// A cheap progress preview: the 4-channel latent projected linearly to RGB, no VAE decode.
import { type EncodedImage, encodeRgbImage, type ImageFormat, resizeImage } from './encode.ts';
import { vaeValueToByte } from './image.ts';
import { DEFAULT_MAX_BYTES } from './limits.ts';
import type { RgbImage } from './raster.ts';

/** rgb = offset + Σₖ latent[k] · matrix[k], giving values on the VAE's [-1, 1] output scale. */
export interface LatentRgbProjection {
  /** One row per latent channel: its contribution to R, G, B. */
  readonly matrix: ReadonlyArray<readonly [number, number, number]>;
  readonly offset: readonly [number, number, number];
}

/**
 * SD 1.x (the VAE shared by SD 1.4 and 1.5), for latents as the scheduler sees them (already × 0.18215).
 * The matrix is the least-squares fit of VAE-decoded RGB on the four latent channels that ComfyUI ships for
 * SD 1.x; we chose it over Keturn's earlier fit for SD 1.4 (same signs, which its author found a little
 * undersaturated). Channel 4 acts mostly on brightness (high values darken). The fit has no intercept, so
 * the offsets are zero; they are kept so a fit that has one (SDXL's does) plugs in. Deriving our own fit
 * needs the real VAE and a photo set, which the repository does not have.
 */
export const SD15_LATENT_RGB: LatentRgbProjection = {
  matrix: [
    [0.3512, 0.2297, 0.3227],
    [0.325, 0.4974, 0.235],
    [-0.2829, 0.1762, 0.2721],
    [-0.212, -0.2616, -0.7177],
  ],
  offset: [0, 0, 0],
};

/** Latent [channels, h, w] (CHW) → h × w RGB bytes (HWC), mapped from [-1, 1] like the decoded image. */
export function latentToRgb(
  latent: Float32Array,
  h: number,
  w: number,
  projection: LatentRgbProjection = SD15_LATENT_RGB,
): Uint8Array {
  const channels = projection.matrix.length;
  const plane = h * w;
  if (!Number.isInteger(h) || !Number.isInteger(w) || plane <= 0 || latent.length !== channels * plane) {
    throw new RangeError(
      `latentToRgb: expected [${channels}, ${h}, ${w}] = ${channels * plane} values, got ${latent.length}`,
    );
  }
  const rgb = new Uint8Array(3 * plane);
  for (let p = 0; p < plane; p++) {
    for (let c = 0; c < 3; c++) {
      let value = projection.offset[c]!;
      for (let k = 0; k < channels; k++) value += latent[k * plane + p]! * projection.matrix[k]![c]!;
      rgb[3 * p + c] = vaeValueToByte(value);
    }
  }
  return rgb;
}

export interface LatentPreviewOptions {
  /** Longest side of the preview, in pixels; the latent is upscaled smoothly to it. Default 256. */
  readonly size?: number;
  /** Default 'webp' (a few KB); pass 'png' for clients that do not show WebP inline. */
  readonly prefer?: ImageFormat;
  readonly maxBytes?: number;
  readonly projection?: LatentRgbProjection;
}

/** A small preview picture of a latent [4, h, w] for progress messages. */
export async function latentPreview(
  latent: Float32Array,
  h: number,
  w: number,
  options: LatentPreviewOptions = {},
): Promise<EncodedImage> {
  const small: RgbImage = { width: w, height: h, data: latentToRgb(latent, h, w, options.projection) };
  const size = options.size ?? 256;
  const longest = Math.max(w, h);
  const preview =
    size > longest
      ? await resizeImage(small, Math.round((w * size) / longest), Math.round((h * size) / longest))
      : small;
  return encodeRgbImage(preview, {
    maxBytes: options.maxBytes ?? DEFAULT_MAX_BYTES,
    prefer: options.prefer ?? 'webp',
  });
}
