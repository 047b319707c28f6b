// Labels drawn with sharp's text rendering (Pango) in fonts shipped as npm packages, so names, subjects and
// emoji show as typed ("café", 猫, 🐧) and look the same on every host, whatever fonts the system has:
// Noto Sans SC covers Latin, Greek, Cyrillic, kana, Hangul and CJK ideographs; Noto Emoji the emoji.
import { createRequire } from 'node:module';
import sharp from 'sharp';
import type { Rgb, RgbImage } from './raster.ts';

const require = createRequire(import.meta.url);

/** The label fonts, first family first; Pango takes each character from the first family that has it. */
export const LABEL_FONTS = [
  {
    family: 'Noto Sans SC',
    file: require.resolve('@expo-google-fonts/noto-sans-sc/400Regular/NotoSansSC_400Regular.ttf'),
  },
  {
    family: 'Noto Emoji',
    file: require.resolve('@expo-google-fonts/noto-emoji/400Regular/NotoEmoji_400Regular.ttf'),
  },
] as const;

const FAMILIES = LABEL_FONTS.map((f) => f.family).join(', ');

/** A rasterised line of text: coverage 0–255 per pixel, one byte each. */
export interface Label {
  readonly text: string;
  readonly width: number;
  readonly height: number;
  readonly coverage: Uint8Array;
}

/** Height a line of `px`-pixel text takes, ascent to descent: the fonts' line spacing, rounded up. */
export function lineHeight(px: number): number {
  return Math.ceil(px * 1.45);
}

// libvips registers a `fontfile` with fontconfig once per process; each file is registered before first use.
let registered: Promise<void> | undefined;
function registerFonts(): Promise<void> {
  registered ??= Promise.all(
    LABEL_FONTS.map(({ file }) =>
      sharp({ text: { text: '.', fontfile: file, font: FAMILIES, dpi: 72 } })
        .raw()
        .toBuffer(),
    ),
  ).then(() => undefined);
  return registered;
}

function markup(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

const cache = new Map<string, Promise<Label>>();
const CACHE_SIZE = 512;

async function rasterise(text: string, px: number): Promise<Label> {
  const height = lineHeight(px);
  if (text.trim() === '') return { text, width: 0, height, coverage: new Uint8Array(0) };
  await registerFonts();
  const { data, info } = await sharp({
    text: { text: markup(text), font: `${FAMILIES} ${px}px`, fontfile: LABEL_FONTS[0].file, dpi: 72 },
  })
    .extractChannel(0)
    .raw()
    .toBuffer({ resolveWithObject: true });
  // Every line gets the same height, so layouts can be computed before any text is drawn.
  const coverage = new Uint8Array(info.width * height);
  const rows = Math.min(height, info.height);
  for (let y = 0; y < rows; y++)
    coverage.set(data.subarray(y * info.width, (y + 1) * info.width), y * info.width);
  return { text, width: info.width, height, coverage };
}

/** `text` rendered at `px` pixels (one line), cached. */
export function renderLabel(text: string, px: number): Promise<Label> {
  const key = `${px}\u0000${text}`;
  let label = cache.get(key);
  if (!label) {
    label = rasterise(text, px);
    if (cache.size >= CACHE_SIZE) cache.delete(cache.keys().next().value!);
    cache.set(key, label);
    label.catch(() => cache.delete(key));
  }
  return label;
}

const graphemes = (text: string) =>
  [...new Intl.Segmenter(undefined, { granularity: 'grapheme' }).segment(text)].map((s) => s.segment);

/** The longest start of `text` (whole graphemes) that fits `maxWidth` with '…' after it, or all of it. */
export async function fitLabel(text: string, maxWidth: number, px: number): Promise<Label> {
  const full = await renderLabel(text, px);
  if (full.width <= maxWidth) return full;
  const parts = graphemes(text);
  let lo = 0;
  let hi = parts.length - 1;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if ((await renderLabel(`${parts.slice(0, mid).join('').trimEnd()}…`, px)).width <= maxWidth) lo = mid;
    else hi = mid - 1;
  }
  return renderLabel(`${parts.slice(0, lo).join('').trimEnd()}…`, px);
}

/** `text` wrapped at spaces (or between graphemes for a long word) onto at most `maxLines` lines of `maxWidth`. */
export async function wrapLabel(
  text: string,
  maxWidth: number,
  px: number,
  maxLines: number,
): Promise<Label[]> {
  const lines: string[] = [];
  let rest = text.trim();
  while (rest !== '' && lines.length < maxLines - 1) {
    if ((await renderLabel(rest, px)).width <= maxWidth) break;
    const words = rest.split(' ');
    let take = 0;
    while (
      take < words.length &&
      (await renderLabel(words.slice(0, take + 1).join(' '), px)).width <= maxWidth
    )
      take++;
    let line: string;
    if (take > 0) line = words.slice(0, take).join(' ');
    else {
      // One word wider than the line: break it between graphemes.
      const parts = graphemes(words[0]!);
      let fit = 1;
      while (
        fit < parts.length &&
        (await renderLabel(parts.slice(0, fit + 1).join(''), px)).width <= maxWidth
      )
        fit++;
      line = parts.slice(0, fit).join('');
    }
    lines.push(line);
    rest = rest.slice(line.length).trimStart();
  }
  const out = await Promise.all(lines.map((line) => renderLabel(line, px)));
  if (rest !== '') out.push(await fitLabel(rest, maxWidth, px));
  return out;
}

/** Draws `label` with its top-left corner at (x, y) in `color`, blended by coverage, clipped to the image. */
export function drawLabel(image: RgbImage, label: Label, x: number, y: number, color: Rgb): void {
  const { data } = image;
  for (let row = 0; row < label.height; row++) {
    const ty = y + row;
    if (ty < 0 || ty >= image.height) continue;
    for (let col = 0; col < label.width; col++) {
      const tx = x + col;
      const alpha = label.coverage[row * label.width + col]!;
      if (alpha === 0 || tx < 0 || tx >= image.width) continue;
      const i = (ty * image.width + tx) * 3;
      for (let c = 0; c < 3; c++)
        data[i + c] = Math.round(data[i + c]! + ((color[c]! - data[i + c]!) * alpha) / 255);
    }
  }
}
