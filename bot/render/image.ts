// The VAE's output tensor → 8-bit RGB pixels, exactly as the reference pipeline converts it.
import type { RgbImage } from './raster.ts';

/**
 * One VAE output value in [-1, 1] → 0–255: round(clamp(x/2 + 0.5, 0, 1) · 255), NaN → 0. Computed in float32
 * with ties to even, as diffusers does (torch float32 arithmetic, then numpy's round), so bytes match it.
 */
export function vaeValueToByte(x: number): number {
  const unit = Math.fround(Math.fround(x / 2) + 0.5);
  if (!(unit > 0)) return 0;
  if (unit >= 1) return 255;
  const scaled = Math.fround(unit * 255);
  const nearest = Math.round(scaled);
  return nearest - scaled === 0.5 && nearest % 2 === 1 ? nearest - 1 : nearest;
}

/**
 * Decoded image, Float32Array [3, height, width] (CHW) in [-1, 1] → RGB bytes in HWC order
 * (width·height·3, the layout sharp's raw input and every renderer here take).
 */
export function imageToRgb(chw: Float32Array, width: number, height: number): Uint8Array {
  const plane = width * height;
  if (!Number.isInteger(width) || !Number.isInteger(height) || plane <= 0 || chw.length !== 3 * plane) {
    throw new RangeError(
      `imageToRgb: expected [3, ${height}, ${width}] = ${3 * plane} values, got ${chw.length}`,
    );
  }
  const rgb = new Uint8Array(3 * plane);
  for (let p = 0; p < plane; p++) {
    rgb[3 * p] = vaeValueToByte(chw[p]!);
    rgb[3 * p + 1] = vaeValueToByte(chw[plane + p]!);
    rgb[3 * p + 2] = vaeValueToByte(chw[2 * plane + p]!);
  }
  return rgb;
}

/** imageToRgb wrapped as an RgbImage, the input of maskOverlay. */
export function decodedImage(chw: Float32Array, width: number, height: number): RgbImage {
  return { width, height, data: imageToRgb(chw, width, height) };
}
