// Which LoRA owns which pixels: the image with coloured mask overlays and a legend, and a grid of mask thumbnails.
import { percentagesSummingTo100 } from '../../commands/reply.ts';
import { type EncodedImage, encodeRgbImage, resizeImage } from './encode.ts';
import { DEFAULT_MAX_BYTES } from './limits.ts';
import { BACKGROUND_SWATCH, loraColor } from './palette.ts';
import type { PngTextEntry } from './png-text.ts';
import {
  assertRgbImage,
  blit,
  createImage,
  fillRect,
  mixChannel,
  type Rgb,
  type RgbImage,
  strokeRect,
  upscaleNearest,
} from './raster.ts';
import {
  captionLines,
  drawCentredLines,
  formatPercent,
  labelBlockHeight,
  nameLinesNeeded,
  THEME,
  type TileGrid,
  tileGrid,
  tileOrigin,
} from './sheet.ts';
import { drawLabel, type Label, lineHeight, renderLabel, wrapLabel } from './text.ts';

/** One LoRA's binary mask at the attention resolution (rows × cols, row-major; non-zero = claimed). */
export interface LoraMask {
  readonly name: string;
  readonly mask: Uint8Array;
}

/** The masks of one composition: every LoRA's, and the background's (pixels no LoRA claims). */
export interface MaskSet {
  readonly rows: number;
  readonly cols: number;
  readonly loras: readonly LoraMask[];
  /** Background mask; when absent it is derived as "no LoRA claims the cell". */
  readonly background?: Uint8Array;
}

export interface MaskStyle {
  /** LoRA colours in binding order; beyond its length, golden-angle hues. Default LORA_PALETTE. */
  readonly palette?: readonly Rgb[];
  /** Opacity of the fill over the image, 0–1. Default 0.45. */
  readonly opacity?: number;
}

export interface RenderBudget {
  /** Upper bound on the encoded file size. Default DEFAULT_MAX_BYTES (Discord's 10 MiB). */
  readonly maxBytes?: number;
  /** Text the file carries (the composition's recipe). */
  readonly text?: readonly PngTextEntry[];
}

export interface MaskOverlayOptions extends MaskStyle, RenderBudget {
  /** Larger images are downscaled to this longest side before drawing. Default 512. */
  readonly maxSide?: number;
  /** Smaller images are enlarged (whole pixels) to at least this longest side, so the legend has room. Default 256. */
  readonly minSide?: number;
}

export interface MaskGridOptions extends RenderBudget {
  readonly palette?: readonly Rgb[];
  /** Longest side of one thumbnail, in pixels (rounded down to whole cells). Default 128. */
  readonly thumbSize?: number;
  /** Add a tile for the background mask. Default true. */
  readonly includeBackground?: boolean;
  readonly columns?: number;
}

export const DEFAULT_OVERLAY_OPACITY = 0.45;

function checkMaskSet(masks: MaskSet): void {
  const { rows, cols } = masks;
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows <= 0 || cols <= 0) {
    throw new RangeError(`mask size must be positive integers, got ${rows}×${cols}`);
  }
  for (const { name, mask } of masks.loras) {
    if (mask.length !== rows * cols) {
      throw new RangeError(`mask of '${name}' has ${mask.length} cells, expected ${rows}×${cols}`);
    }
  }
  if (masks.background && masks.background.length !== rows * cols) {
    throw new RangeError(`background mask has ${masks.background.length} cells, expected ${rows}×${cols}`);
  }
}

/** The background mask: the given one, else the cells no LoRA claims. */
export function backgroundMask(masks: MaskSet): Uint8Array {
  if (masks.background) return masks.background;
  const background = new Uint8Array(masks.rows * masks.cols);
  for (let cell = 0; cell < background.length; cell++) {
    background[cell] = masks.loras.some(({ mask }) => mask[cell] !== 0) ? 0 : 1;
  }
  return background;
}

/** Share of cells set in `mask` (0–1); with nearest upscaling by whole cells it is also the share of pixels. */
export function maskCoverage(mask: Uint8Array): number {
  let set = 0;
  for (const value of mask) if (value !== 0) set++;
  return mask.length === 0 ? 0 : set / mask.length;
}

/**
 * Share of the picture each LoRA draws, and the background's, adding up to 1: a cell claimed by several LoRAs
 * is split evenly between them, as CLoRA's fusion averages their predictions there.
 */
export function ownershipShares(masks: MaskSet): { loras: number[]; background: number; shared: number } {
  checkMaskSet(masks);
  const cells = masks.rows * masks.cols;
  const loras = masks.loras.map(() => 0);
  let background = 0;
  let shared = 0;
  for (let cell = 0; cell < cells; cell++) {
    const owners = masks.loras.flatMap(({ mask }, i) => (mask[cell] !== 0 ? [i] : []));
    if (owners.length === 0) background++;
    else for (const i of owners) loras[i]! += 1 / owners.length;
    if (owners.length > 1) shared++;
  }
  return { loras: loras.map((n) => n / cells), background: background / cells, shared: shared / cells };
}

/** Nearest-neighbour index map: output coordinate → source coordinate. */
function nearestIndex(outSize: number, sourceSize: number): Int32Array {
  const index = new Int32Array(outSize);
  for (let i = 0; i < outSize; i++) index[i] = Math.floor((i * sourceSize) / outSize);
  return index;
}

/** The mask upscaled (nearest) to width × height, one byte per pixel (0/1). */
function upscaleMask(mask: Uint8Array, masks: MaskSet, width: number, height: number): Uint8Array {
  const colOf = nearestIndex(width, masks.cols);
  const rowOf = nearestIndex(height, masks.rows);
  const out = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) {
    const rowStart = rowOf[y]! * masks.cols;
    for (let x = 0; x < width; x++) out[y * width + x] = mask[rowStart + colOf[x]!] !== 0 ? 1 : 0;
  }
  return out;
}

/**
 * Inner outline of a pixel mask: set pixels with an unset pixel within `thickness` (Chebyshev distance), i.e.
 * a band `thickness` pixels wide inside the edge. The image border does not count as outside.
 */
function innerOutline(pixels: Uint8Array, width: number, height: number, thickness: number): Uint8Array {
  const reach = thickness;
  const horizontal = new Uint8Array(pixels.length);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let all = 1;
      for (let dx = Math.max(0, x - reach); dx <= Math.min(width - 1, x + reach) && all; dx++) {
        all = pixels[y * width + dx]!;
      }
      horizontal[y * width + x] = all;
    }
  }
  const outline = new Uint8Array(pixels.length);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const p = y * width + x;
      if (!pixels[p]) continue;
      let all = 1;
      for (let dy = Math.max(0, y - reach); dy <= Math.min(height - 1, y + reach) && all; dy++) {
        all = horizontal[dy * width + x]!;
      }
      outline[p] = all ? 0 : 1;
    }
  }
  return outline;
}

interface LegendEntry {
  readonly color: Rgb;
  readonly name: string;
  readonly detail: string;
}

export interface PlacedEntry {
  readonly color: Rgb;
  readonly x: number;
  readonly y: number;
  /** The name's lines; the detail follows the last one. */
  readonly lines: readonly Label[];
  readonly detail: Label;
}

export interface LegendLayout {
  readonly px: number;
  readonly height: number;
  readonly placed: readonly PlacedEntry[];
  /** What the shares measure, under the entries. */
  readonly note?: { readonly labels: readonly Label[]; readonly y: number };
}

/** Legend text size for an image `width` pixels wide: 13 px at 512, never under 12. */
function legendPx(width: number): number {
  return Math.max(12, Math.round(width / 40));
}

/** Flows entries (swatch, name, share) left to right, wrapping to new rows; a long name wraps onto more lines. */
async function layoutLegend(
  entries: readonly LegendEntry[],
  width: number,
  note?: string,
): Promise<LegendLayout> {
  const px = legendPx(width);
  const padding = Math.round(px / 2);
  const swatch = px;
  const swatchGap = Math.round(px / 3);
  const entryGap = px;
  const line = lineHeight(px);
  const usable = width - 2 * padding;
  const placed: PlacedEntry[] = [];
  let x = padding;
  let y = padding;
  let rowHeight = line;
  for (const entry of entries) {
    // Labels are cut to their ink, so the gap before the share is explicit rather than a space.
    const detail = await renderLabel(entry.detail, px);
    const detailWidth = swatchGap + detail.width;
    const one = await renderLabel(entry.name, px);
    const lines =
      swatch + swatchGap + one.width + detailWidth <= usable
        ? [one]
        : await wrapLabel(entry.name, usable - swatch - swatchGap - detailWidth, px, 3);
    const entryWidth = swatch + swatchGap + Math.max(...lines.map((l) => l.width)) + detailWidth;
    if (x > padding && x + entryWidth > width - padding) {
      x = padding;
      y += rowHeight;
      rowHeight = line;
    }
    placed.push({ color: entry.color, x, y, lines, detail });
    rowHeight = Math.max(rowHeight, lines.length * line);
    x += entryWidth + entryGap;
  }
  let bottom = placed.length === 0 ? padding : y + rowHeight;
  let placedNote: LegendLayout['note'];
  if (note) {
    const labels = await wrapLabel(note, usable, Math.max(11, px - 2), 2);
    placedNote = { labels, y: bottom };
    bottom += labels.reduce((h, l) => h + l.height, 0);
  }
  return { px, height: bottom + padding, placed, ...(placedNote ? { note: placedNote } : {}) };
}

/**
 * The legend under the overlay for an image `width` pixels wide: per LoRA its colour, name and share of the
 * picture, then the background; shares add up to 100.0%, and a note says how striped (shared) cells count.
 */
export async function maskLegend(
  masks: MaskSet,
  width: number,
  colors: readonly Rgb[],
): Promise<LegendLayout> {
  const shares = ownershipShares(masks);
  const percents = percentagesSummingTo100([...shares.loras, shares.background]);
  const entries: LegendEntry[] = masks.loras.map(({ name }, i) => ({
    color: colors[i]!,
    name,
    detail: percents[i]!,
  }));
  entries.push({ color: BACKGROUND_SWATCH, name: 'background', detail: percents[masks.loras.length]! });
  const note = shares.shared > 0 ? 'Striped: drawn by several LoRAs, split evenly between them.' : undefined;
  return layoutLegend(entries, width, note);
}

function drawLegend(image: RgbImage, layout: LegendLayout, top: number): void {
  const swatch = layout.px;
  const line = lineHeight(layout.px);
  // The swatch sits on the first line's text, a little below the line's top.
  const swatchTop = Math.round((line - swatch) / 2);
  for (const entry of layout.placed) {
    const y = top + entry.y;
    fillRect(image, entry.x, y + swatchTop, swatch, swatch, entry.color);
    strokeRect(image, entry.x, y + swatchTop, swatch, swatch, 1, THEME.frame);
    const textX = entry.x + swatch + Math.round(layout.px / 3);
    for (const [i, label] of entry.lines.entries()) drawLabel(image, label, textX, y + i * line, THEME.text);
    const last = entry.lines[entry.lines.length - 1]!;
    const detailX = textX + last.width + Math.round(layout.px / 3);
    drawLabel(image, entry.detail, detailX, y + (entry.lines.length - 1) * line, THEME.dimText);
  }
  let noteY = top + (layout.note?.y ?? 0);
  for (const label of layout.note?.labels ?? []) {
    drawLabel(image, label, Math.round(layout.px / 2), noteY, THEME.dimText);
    noteY += label.height;
  }
}

/**
 * Draws the overlay picture: the image with each LoRA's mask (nearest-upscaled) as a translucent fill in its
 * colour and a solid inner outline; where masks overlap, diagonal stripes alternate the owners' colours.
 * Below the image, a legend strip: swatch, LoRA name and the share of the picture it draws (shared cells split
 * evenly, so LoRAs and background add up to 100%), then the background.
 */
export async function drawMaskOverlay(
  image: RgbImage,
  masks: MaskSet,
  style: MaskStyle = {},
): Promise<RgbImage> {
  assertRgbImage(image, 'maskOverlay image');
  checkMaskSet(masks);
  const { width, height } = image;
  const opacity = style.opacity ?? DEFAULT_OVERLAY_OPACITY;
  const colors = masks.loras.map((_, i) => loraColor(i, style.palette));
  const pixels = masks.loras.map(({ mask }) => upscaleMask(mask, masks, width, height));
  const outlineWidth = Math.max(1, Math.round(width / 256));
  const outlines = pixels.map((p) => innerOutline(p, width, height, outlineWidth));
  const stripe = Math.max(4, Math.round(width / 64));

  const legend = await maskLegend(masks, width, colors);

  const out = createImage(width, height + legend.height, THEME.background);
  blit(out, image, 0, 0);
  const owners: number[] = [];
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const p = y * width + x;
      owners.length = 0;
      for (let i = 0; i < pixels.length; i++) if (pixels[i]![p]) owners.push(i);
      if (owners.length === 0) continue;
      const owner = owners[Math.floor((x + y) / stripe) % owners.length]!;
      const color = colors[owner]!;
      for (let c = 0; c < 3; c++)
        out.data[3 * p + c] = mixChannel(image.data[3 * p + c]!, color[c]!, opacity);
    }
  }
  outlines.forEach((outline, i) => {
    const color = colors[i]!;
    for (let p = 0; p < outline.length; p++) {
      if (!outline[p]) continue;
      out.data[3 * p] = color[0];
      out.data[3 * p + 1] = color[1];
      out.data[3 * p + 2] = color[2];
    }
  });
  drawLegend(out, legend, height);
  return out;
}

/** The overlay picture (drawMaskOverlay), downscaled first when the image exceeds `maxSide`, encoded as PNG. */
export async function maskOverlay(
  image: RgbImage,
  masks: MaskSet,
  options: MaskOverlayOptions = {},
): Promise<EncodedImage> {
  assertRgbImage(image, 'maskOverlay image');
  const maxSide = options.maxSide ?? 512;
  const minSide = Math.min(options.minSide ?? 256, maxSide);
  const longest = Math.max(image.width, image.height);
  const base =
    longest > maxSide
      ? await resizeImage(
          image,
          Math.max(1, Math.round((image.width * maxSide) / longest)),
          Math.max(1, Math.round((image.height * maxSide) / longest)),
        )
      : longest < minSide
        ? upscaleNearest(image, Math.ceil(minSide / longest))
        : image;
  const picture = await drawMaskOverlay(base, masks, options);
  return encodeRgbImage(picture, {
    maxBytes: options.maxBytes ?? DEFAULT_MAX_BYTES,
    prefer: 'png',
    ...(options.text ? { text: options.text } : {}),
  });
}

export interface MaskGridLayout {
  readonly grid: TileGrid;
  /** Pixels per mask cell. */
  readonly cell: number;
  readonly thumbWidth: number;
  readonly thumbHeight: number;
  /** Offset of the caption below the tile's top edge. */
  readonly captionTop: number;
  /** Lines a caption may use for the name (then one line for the share). */
  readonly nameLines: number;
  /** Tiles in order: the LoRAs, then the background when included. */
  readonly tiles: ReadonlyArray<{ name: string; mask: Uint8Array; color: Rgb }>;
}

/** Where everything in the mask grid goes; the thumbnail sits 1 px inside the tile's frame. */
export async function maskGridLayout(masks: MaskSet, options: MaskGridOptions = {}): Promise<MaskGridLayout> {
  checkMaskSet(masks);
  const thumbSize = options.thumbSize ?? 128;
  const cell = Math.max(1, Math.floor(thumbSize / Math.max(masks.rows, masks.cols)));
  const thumbWidth = masks.cols * cell;
  const thumbHeight = masks.rows * cell;
  const tiles = masks.loras.map(({ name, mask }, i) => ({
    name,
    mask,
    color: loraColor(i, options.palette),
  }));
  if (options.includeBackground ?? true) {
    tiles.push({ name: 'background', mask: backgroundMask(masks), color: BACKGROUND_SWATCH });
  }
  const captionTop = thumbHeight + 2 + 6;
  const tileWidth = thumbWidth + 2;
  const nameLines = await nameLinesNeeded(
    tiles.map((t) => t.name),
    tileWidth,
    2,
  );
  const tileHeight = captionTop + labelBlockHeight(nameLines + 1);
  const grid = tileGrid(tiles.length, tileWidth, tileHeight, { columns: options.columns });
  return { grid, cell, thumbWidth, thumbHeight, captionTop, nameLines, tiles };
}

/**
 * A compact grid of per-mask thumbnails (claimed cells in the LoRA's colour), each captioned with its name and
 * how much of the picture its mask covers (masks may overlap, so these need not add up to 100%).
 */
export async function drawMaskGrid(masks: MaskSet, options: MaskGridOptions = {}): Promise<RgbImage> {
  const layout = await maskGridLayout(masks, options);
  const { grid, cell, thumbWidth, thumbHeight } = layout;
  const out = createImage(grid.width, grid.height, THEME.background);
  for (const [index, tile] of layout.tiles.entries()) {
    const { x, y } = tileOrigin(grid, index);
    strokeRect(out, x, y, thumbWidth + 2, thumbHeight + 2, 1, THEME.frame);
    for (let row = 0; row < masks.rows; row++) {
      for (let col = 0; col < masks.cols; col++) {
        const color = tile.mask[row * masks.cols + col] !== 0 ? tile.color : THEME.emptyCell;
        fillRect(out, x + 1 + col * cell, y + 1 + row * cell, cell, cell, color);
      }
    }
    const share = `covers ${formatPercent(maskCoverage(tile.mask))}`;
    const caption = await captionLines(tile.name, share, grid.tileWidth, layout.nameLines);
    drawCentredLines(out, caption, x, y + layout.captionTop, grid.tileWidth);
  }
  return out;
}

/** drawMaskGrid encoded as PNG (within `maxBytes`). */
export async function maskGrid(masks: MaskSet, options: MaskGridOptions = {}): Promise<EncodedImage> {
  return encodeRgbImage(await drawMaskGrid(masks, options), {
    maxBytes: options.maxBytes ?? DEFAULT_MAX_BYTES,
    prefer: 'png',
    ...(options.text ? { text: options.text } : {}),
  });
}
