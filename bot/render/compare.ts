// Merge and CLoRA side by side on one seed: the two pictures, then CLoRA's with the masks that
// say which LoRA drew which part — what "Compare with merge" and `npm run compose -- --compare` show.

import { methodTitle } from '../../commands/compare.ts';
import type { TitledPicture } from '../../commands/ports.ts';
import type { CompositionResult } from '../../engine/clora/engine.ts';
import { maskSet } from './composition.ts';
import { decodePicture, type EncodedImage, encodeRgbImage } from './encode.ts';
import { decodedImage } from './image.ts';
import { DEFAULT_MAX_BYTES } from './limits.ts';
import { drawMaskOverlay, type RenderBudget } from './masks.ts';
import { blit, createImage, type RgbImage, upscaleNearest } from './raster.ts';
import { drawCentredLines, LABEL_PX, labelBlockHeight, THEME } from './sheet.ts';
import { fitLabel } from './text.ts';

export interface ComparisonPanel {
  readonly title: string;
  readonly image: RgbImage;
}

const MARGIN = 12;
const GAP = 12;
const TITLE_GAP = 6;
/** Pictures narrower than this are enlarged by whole pixels, so titles and legends have room. */
const MIN_PANEL_WIDTH = 256;

/** The panels in one row, each under its title, top-aligned on the dark sheet theme. */
export async function drawComparison(panels: readonly ComparisonPanel[]): Promise<RgbImage> {
  if (panels.length === 0) throw new RangeError('a comparison needs at least one picture');
  const images = panels.map(({ image }) =>
    image.width < MIN_PANEL_WIDTH ? upscaleNearest(image, Math.ceil(MIN_PANEL_WIDTH / image.width)) : image,
  );
  const column = Math.max(...images.map((i) => i.width));
  const titleHeight = labelBlockHeight(1);
  const top = MARGIN + titleHeight + TITLE_GAP;
  const width = 2 * MARGIN + panels.length * column + (panels.length - 1) * GAP;
  const height = top + Math.max(...images.map((i) => i.height)) + MARGIN;
  const sheet = createImage(width, height, THEME.background);
  for (const [k, image] of images.entries()) {
    const x = MARGIN + k * (column + GAP);
    const label = await fitLabel(panels[k].title, column, LABEL_PX);
    drawCentredLines(sheet, [{ label, color: THEME.text }], x, MARGIN, column);
    blit(sheet, image, x + Math.floor((column - image.width) / 2), top);
  }
  return sheet;
}

function encodeSheet(sheet: RgbImage, options: RenderBudget): Promise<EncodedImage> {
  return encodeRgbImage(sheet, {
    maxBytes: options.maxBytes ?? DEFAULT_MAX_BYTES,
    prefer: 'png',
    ...(options.text ? { text: options.text } : {}),
  });
}

/**
 * Merge | the other method | its masks, from two compositions of one seed (the CLI, the README
 * picture): `merge` is the merged composition, `other` the one compared with it (CLoRA).
 */
export async function compositionComparison(
  merge: CompositionResult,
  other: CompositionResult,
  options: RenderBudget = {},
): Promise<EncodedImage> {
  const merged = decodedImage(merge.image, merge.width, merge.height);
  const composed = decodedImage(other.image, other.width, other.height);
  const title = methodTitle(other.spec.method);
  const panels: ComparisonPanel[] = [
    { title: methodTitle(merge.spec.method), image: merged },
    { title, image: composed },
  ];
  const masks = maskSet(other);
  if (masks) panels.push({ title: `${title}'s masks`, image: await drawMaskOverlay(composed, masks) });
  return encodeSheet(await drawComparison(panels), options);
}

/** The same sheet from pictures already encoded (a bot's finished jobs): titles and bytes in order. */
export async function pictureComparison(
  pictures: readonly TitledPicture[],
  options: RenderBudget = {},
): Promise<EncodedImage> {
  const panels = await Promise.all(
    pictures.map(async ({ title, bytes }) => ({ title, image: await decodePicture(bytes) })),
  );
  return encodeSheet(await drawComparison(panels), options);
}
