// Viridis, the perceptually uniform colour map, for attention heat maps (dark purple = low, yellow = high).
import { hexColor, type Rgb } from './raster.ts';

/**
 * Control points: matplotlib's viridis sampled at t = k/9, k = 0…9 (the common 10-colour viridis list);
 * between them we interpolate linearly in sRGB, which stays within a couple of levels of the full table.
 */
export const VIRIDIS_STOPS: readonly Rgb[] = [
  '#440154',
  '#482878',
  '#3e4a89',
  '#31688e',
  '#26828e',
  '#1f9e89',
  '#35b779',
  '#6dcd59',
  '#b4de2c',
  '#fde725',
].map(hexColor);

/** Viridis colour at t ∈ [0, 1] (clamped; NaN → 0): t = 0 is exactly the first stop, t = 1 the last. */
export function viridis(t: number): Rgb {
  const clamped = t > 0 ? Math.min(t, 1) : 0;
  const position = clamped * (VIRIDIS_STOPS.length - 1);
  const index = Math.min(Math.floor(position), VIRIDIS_STOPS.length - 2);
  const f = position - index;
  const a = VIRIDIS_STOPS[index]!;
  const b = VIRIDIS_STOPS[index + 1]!;
  return [
    Math.round(a[0] + (b[0] - a[0]) * f),
    Math.round(a[1] + (b[1] - a[1]) * f),
    Math.round(a[2] + (b[2] - a[2]) * f),
  ];
}
