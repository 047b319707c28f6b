// Colours that tell LoRAs apart in overlays, grids and legends.
import { hexColor, type Rgb } from './raster.ts';

/**
 * Okabe–Ito's colour-blind-safe set (black left out: it vanishes on dark pictures), ordered so the common
 * two- and three-LoRA cases get the most distinct pairs: orange / sky blue / bluish green first.
 */
export const LORA_PALETTE: readonly Rgb[] = [
  '#e69f00',
  '#56b4e9',
  '#009e73',
  '#cc79a7',
  '#f0e442',
  '#d55e00',
  '#0072b2',
].map(hexColor);

/** Swatch colour for the background (pixels no LoRA claims, owned by the base branch). */
export const BACKGROUND_SWATCH: Rgb = hexColor('#8e9297');

/** Colour of LoRA `index`: the palette, then golden-angle hues so any count stays distinct. */
export function loraColor(index: number, palette: readonly Rgb[] = LORA_PALETTE): Rgb {
  if (index < palette.length) return palette[index]!;
  return hsvToRgb(((index - palette.length) * 137.508 + 15) % 360, 0.7, 0.95);
}

function hsvToRgb(hue: number, saturation: number, value: number): Rgb {
  const channel = (n: number) => {
    const k = (n + hue / 60) % 6;
    return Math.round(255 * (value - value * saturation * Math.max(0, Math.min(k, 4 - k, 1))));
  };
  return [channel(5), channel(3), channel(1)];
}
