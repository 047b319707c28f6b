// Which LoRA owns which pixels: the image with coloured mask overlays and a legend, and a grid of mask thumbnails.
import { type EncodedImage, encodeRgbImage, resizeImage } from './encode.ts';
import { capHeight, charsThatFit, drawText, lineHeight, textWidth, truncateText } from './font.ts';
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

interface LegendLayout {
  readonly scale: number;
  readonly height: number;
  /** Per entry: position in the strip and the name as it fits. */
  readonly placed: ReadonlyArray<LegendEntry & { x: number; y: number }>;
}

/** Legend text scale for an image `width` pixels wide: 2× below 800 px, larger beyond. */
function legendScale(width: number): number {
  return Math.max(2, Math.round(width / 320));
}

/** Flows entries (swatch, name, share) left to right, wrapping to new rows; names are cut to fit a row. */
function layoutLegend(entries: readonly LegendEntry[], width: number): LegendLayout {
  const scale = legendScale(width);
  const padding = 5 * scale;
  const swatch = capHeight(scale);
  const swatchGap = 3 * scale;
  const entryGap = 8 * scale;
  const rowHeight = lineHeight(scale) + 2 * scale;
  const usable = width - 2 * padding;
  const placed: Array<LegendEntry & { x: number; y: number }> = [];
  let x = padding;
  let y = padding;
  for (const entry of entries) {
    const roomForName = charsThatFit(usable - swatch - swatchGap, scale) - [...` ${entry.detail}`].length;
    const name = truncateText(entry.name, Math.max(1, roomForName));
    const entryWidth = swatch + swatchGap + textWidth(`${name} ${entry.detail}`, scale);
    if (x > padding && x + entryWidth > width - padding) {
      x = padding;
      y += rowHeight;
    }
    placed.push({ ...entry, name, x, y });
    x += entryWidth + entryGap;
  }
  const rows = placed.length === 0 ? 0 : (y - padding) / rowHeight + 1;
  return { scale, height: 2 * padding + rows * rowHeight - 2 * scale, placed };
}

function drawLegend(image: RgbImage, layout: LegendLayout, top: number): void {
  const swatch = capHeight(layout.scale);
  for (const entry of layout.placed) {
    const y = top + entry.y;
    fillRect(image, entry.x, y, swatch, swatch, entry.color);
    strokeRect(image, entry.x, y, swatch, swatch, 1, THEME.frame);
    const textX = entry.x + swatch + 3 * layout.scale;
    const nameWidth = drawText(image, entry.name, textX, y, layout.scale, THEME.text);
    drawText(image, ` ${entry.detail}`, textX + nameWidth, y, layout.scale, THEME.dimText);
  }
}

/**
 * Draws the overlay picture: the image with each LoRA's mask (nearest-upscaled) as a translucent fill in its
 * colour and a solid inner outline; where masks overlap, diagonal stripes alternate the owners' colours.
 * Below the image, a legend strip: swatch, LoRA name and share of pixels per LoRA, then the background.
 */
export function drawMaskOverlay(image: RgbImage, masks: MaskSet, style: MaskStyle = {}): RgbImage {
  assertRgbImage(image, 'maskOverlay image');
  checkMaskSet(masks);
  const { width, height } = image;
  const opacity = style.opacity ?? DEFAULT_OVERLAY_OPACITY;
  const colors = masks.loras.map((_, i) => loraColor(i, style.palette));
  const pixels = masks.loras.map(({ mask }) => upscaleMask(mask, masks, width, height));
  const outlineWidth = Math.max(1, Math.round(width / 256));
  const outlines = pixels.map((p) => innerOutline(p, width, height, outlineWidth));
  const stripe = Math.max(4, Math.round(width / 64));

  const entries: LegendEntry[] = masks.loras.map(({ name, mask }, i) => ({
    color: colors[i]!,
    name,
    detail: formatPercent(maskCoverage(mask)),
  }));
  entries.push({
    color: BACKGROUND_SWATCH,
    name: 'background',
    detail: formatPercent(maskCoverage(backgroundMask(masks))),
  });
  const legend = layoutLegend(entries, width);

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
  const longest = Math.max(image.width, image.height);
  const base =
    longest > maxSide
      ? await resizeImage(
          image,
          Math.max(1, Math.round((image.width * maxSide) / longest)),
          Math.max(1, Math.round((image.height * maxSide) / longest)),
        )
      : image;
  const picture = drawMaskOverlay(base, masks, options);
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
export function maskGridLayout(masks: MaskSet, options: MaskGridOptions = {}): MaskGridLayout {
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
  const nameLines = nameLinesNeeded(
    tiles.map((t) => t.name),
    tileWidth,
    2,
  );
  const tileHeight = captionTop + labelBlockHeight(nameLines + 1);
  const grid = tileGrid(tiles.length, tileWidth, tileHeight, { columns: options.columns });
  return { grid, cell, thumbWidth, thumbHeight, captionTop, nameLines, tiles };
}

/** A compact grid of per-mask thumbnails (claimed cells in the LoRA's colour), each captioned with name and share. */
export function drawMaskGrid(masks: MaskSet, options: MaskGridOptions = {}): RgbImage {
  const layout = maskGridLayout(masks, options);
  const { grid, cell, thumbWidth, thumbHeight } = layout;
  const out = createImage(grid.width, grid.height, THEME.background);
  layout.tiles.forEach((tile, index) => {
    const { x, y } = tileOrigin(grid, index);
    strokeRect(out, x, y, thumbWidth + 2, thumbHeight + 2, 1, THEME.frame);
    for (let row = 0; row < masks.rows; row++) {
      for (let col = 0; col < masks.cols; col++) {
        const color = tile.mask[row * masks.cols + col] !== 0 ? tile.color : THEME.emptyCell;
        fillRect(out, x + 1 + col * cell, y + 1 + row * cell, cell, cell, color);
      }
    }
    const share = formatPercent(maskCoverage(tile.mask));
    const caption = captionLines(tile.name, share, grid.tileWidth, layout.nameLines);
    drawCentredLines(out, caption, x, y + layout.captionTop, grid.tileWidth);
  });
  return out;
}

/** drawMaskGrid encoded as PNG (within `maxBytes`). */
export function maskGrid(masks: MaskSet, options: MaskGridOptions = {}): Promise<EncodedImage> {
  return encodeRgbImage(drawMaskGrid(masks, options), {
    maxBytes: options.maxBytes ?? DEFAULT_MAX_BYTES,
    prefer: 'png',
    ...(options.text ? { text: options.text } : {}),
  });
}
