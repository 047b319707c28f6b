// Per-token cross-attention maps as a sheet of labelled viridis heat maps, with a colour bar.
import { viridis } from './colormap.ts';
import { type EncodedImage, encodeRgbImage } from './encode.ts';
import { DEFAULT_MAX_BYTES } from './limits.ts';
import type { RenderBudget } from './masks.ts';
import { createImage, fillRect, type RgbImage, strokeRect } from './raster.ts';
import {
  captionLines,
  drawCentredLines,
  LABEL_PX,
  LINE_GAP,
  labelBlockHeight,
  nameLinesNeeded,
  THEME,
  type TileGrid,
  tileGrid,
  tileOrigin,
} from './sheet.ts';
import { drawLabel, type Label, lineHeight, renderLabel, wrapLabel } from './text.ts';

/** One token's attention map, rows × cols of the set, row-major; `label` e.g. "cat (P0)". */
export interface TokenAttentionMap {
  readonly label: string;
  readonly values: Float32Array;
}

export interface AttentionMapSet {
  readonly rows: number;
  readonly cols: number;
  readonly maps: readonly TokenAttentionMap[];
  /** Lines printed under the colour bar, e.g. what P0, P1 … in the labels stand for. */
  readonly notes?: readonly string[];
}

export interface AttentionSheetOptions extends RenderBudget {
  /**
   * 'per-map' (default): each map scaled from its own min to its own max, as the CLoRA loss normalises them;
   * 'shared': one min…max over all maps, so strengths compare across tokens.
   */
  readonly normalize?: 'per-map' | 'shared';
  /** Longest side of one heat map, in pixels (rounded down to whole cells). Default 160. */
  readonly tileSize?: number;
  readonly columns?: number;
}

export interface AttentionSheetLayout {
  readonly grid: TileGrid;
  readonly cell: number;
  readonly mapWidth: number;
  readonly mapHeight: number;
  /** Offset of a caption below its tile's top edge. */
  readonly captionTop: number;
  /** Lines a caption may use for the label (then one line for the peak). */
  readonly nameLines: number;
  /** Colour bar: position and size in the sheet. */
  readonly bar: { readonly x: number; readonly y: number; readonly width: number; readonly height: number };
  /** The notes, wrapped to the sheet's width, and where the first line goes. */
  readonly notes: { readonly lines: readonly Label[]; readonly y: number };
  readonly width: number;
  readonly height: number;
}

const BAR_HEIGHT = 12;

/** Where the heat maps, captions and colour bar go; each heat map sits 1 px inside its tile's frame. */
export async function attentionSheetLayout(
  set: AttentionMapSet,
  options: AttentionSheetOptions = {},
): Promise<AttentionSheetLayout> {
  const { rows, cols } = set;
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows <= 0 || cols <= 0) {
    throw new RangeError(`attention map size must be positive integers, got ${rows}×${cols}`);
  }
  if (set.maps.length === 0) throw new RangeError('attentionMapsSheet: no maps to draw');
  for (const { label, values } of set.maps) {
    if (values.length !== rows * cols) {
      throw new RangeError(`attention map '${label}' has ${values.length} values, expected ${rows}×${cols}`);
    }
  }
  const cell = Math.max(1, Math.floor((options.tileSize ?? 160) / Math.max(rows, cols)));
  const mapWidth = cols * cell;
  const mapHeight = rows * cell;
  const captionTop = mapHeight + 2 + 6;
  const nameLines = await nameLinesNeeded(
    set.maps.map((m) => m.label),
    mapWidth + 2,
    2,
  );
  const grid = tileGrid(set.maps.length, mapWidth + 2, captionTop + labelBlockHeight(nameLines + 1), {
    columns: options.columns,
  });
  const barY = grid.height - grid.margin + grid.gap;
  const bar = { x: grid.margin, y: barY, width: grid.width - 2 * grid.margin, height: BAR_HEIGHT };
  const notesY = barY + BAR_HEIGHT + 4 + lineHeight(LABEL_PX) + LINE_GAP;
  const lines: Label[] = [];
  for (const note of set.notes ?? []) lines.push(...(await wrapLabel(note, bar.width, LABEL_PX, 3)));
  const notesHeight = lines.length * (lineHeight(LABEL_PX) + LINE_GAP);
  const height = notesY + notesHeight + grid.margin;
  return {
    grid,
    cell,
    mapWidth,
    mapHeight,
    captionTop,
    nameLines,
    bar,
    notes: { lines, y: notesY },
    width: grid.width,
    height,
  };
}

function finiteRange(values: Float32Array, into: { min: number; max: number }): void {
  for (const v of values) {
    if (!Number.isFinite(v)) continue;
    if (v < into.min) into.min = v;
    if (v > into.max) into.max = v;
  }
}

/** "0.0831", "1.49e-6": three significant digits, short enough for a caption. */
function formatValue(value: number): string {
  if (!Number.isFinite(value)) return 'n/a';
  if (value === 0) return '0';
  const magnitude = Math.abs(value);
  return magnitude >= 1e-3 && magnitude < 1e4 ? value.toPrecision(3) : value.toExponential(2);
}

/**
 * Draws the sheet: one heat map per token (nearest-upscaled, viridis: dark purple = low, yellow = high),
 * captioned with its label and peak value, in a grid; below, a colour bar from min to max.
 * A flat map (min = max) is drawn at the low end; non-finite values count as the minimum.
 */
export async function drawAttentionMapsSheet(
  set: AttentionMapSet,
  options: AttentionSheetOptions = {},
): Promise<RgbImage> {
  const layout = await attentionSheetLayout(set, options);
  const { grid, cell, mapWidth, mapHeight, bar } = layout;
  const shared = options.normalize === 'shared';
  const sharedRange = { min: Number.POSITIVE_INFINITY, max: Number.NEGATIVE_INFINITY };
  if (shared) for (const { values } of set.maps) finiteRange(values, sharedRange);

  const out = createImage(layout.width, layout.height, THEME.background);
  for (const [index, { label, values }] of set.maps.entries()) {
    const range = shared ? sharedRange : { min: Number.POSITIVE_INFINITY, max: Number.NEGATIVE_INFINITY };
    if (!shared) finiteRange(values, range);
    const span = range.max - range.min;
    const { x, y } = tileOrigin(grid, index);
    strokeRect(out, x, y, mapWidth + 2, mapHeight + 2, 1, THEME.frame);
    for (let row = 0; row < set.rows; row++) {
      for (let col = 0; col < set.cols; col++) {
        const v = values[row * set.cols + col]!;
        const t = span > 0 && Number.isFinite(v) ? (v - range.min) / span : 0;
        fillRect(out, x + 1 + col * cell, y + 1 + row * cell, cell, cell, viridis(t));
      }
    }
    const own = { min: Number.POSITIVE_INFINITY, max: Number.NEGATIVE_INFINITY };
    finiteRange(values, own);
    const caption = await captionLines(
      label,
      `peak ${formatValue(own.max)}`,
      grid.tileWidth,
      layout.nameLines,
    );
    drawCentredLines(out, caption, x, y + layout.captionTop, grid.tileWidth);
  }

  for (let i = 0; i < bar.width; i++) {
    fillRect(out, bar.x + i, bar.y, 1, bar.height, viridis(bar.width > 1 ? i / (bar.width - 1) : 0));
  }
  const textY = bar.y + bar.height + 4;
  const low = await renderLabel(shared ? formatValue(sharedRange.min) : 'min', LABEL_PX);
  const high = await renderLabel(shared ? formatValue(sharedRange.max) : 'max', LABEL_PX);
  drawLabel(out, low, bar.x, textY, THEME.dimText);
  drawLabel(out, high, bar.x + bar.width - high.width, textY, THEME.dimText);
  const middle = await renderLabel(shared ? 'shared scale' : 'each map: own scale', LABEL_PX);
  if (bar.width - low.width - high.width >= middle.width + 2 * LABEL_PX) {
    drawLabel(out, middle, bar.x + Math.floor((bar.width - middle.width) / 2), textY, THEME.dimText);
  }
  for (const [i, line] of layout.notes.lines.entries()) {
    drawLabel(out, line, bar.x, layout.notes.y + i * (lineHeight(LABEL_PX) + LINE_GAP), THEME.dimText);
  }
  return out;
}

/** drawAttentionMapsSheet encoded as PNG (within `maxBytes`). */
export async function attentionMapsSheet(
  set: AttentionMapSet,
  options: AttentionSheetOptions = {},
): Promise<EncodedImage> {
  return encodeRgbImage(await drawAttentionMapsSheet(set, options), {
    maxBytes: options.maxBytes ?? DEFAULT_MAX_BYTES,
    prefer: 'png',
    ...(options.text ? { text: options.text } : {}),
  });
}
