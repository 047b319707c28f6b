// Layout shared by the picture sheets (mask grid, attention maps): a dark theme and a grid of labelled tiles.
import { hexColor, type Rgb, type RgbImage } from './raster.ts';
import { drawLabel, fitLabel, type Label, lineHeight, wrapLabel } from './text.ts';

/** Dark theme, close to Discord's and Slack's dark mode so sheets sit quietly in a chat. */
export const THEME = {
  background: hexColor('#1e1f22'),
  text: hexColor('#f2f3f5'),
  dimText: hexColor('#a3a6ad'),
  emptyCell: hexColor('#2b2d31'),
  frame: hexColor('#5c5f66'),
} as const;

/** Size of sheet labels in pixels: reads well in a chat client at 1:1. */
export const LABEL_PX = 13;
/** Vertical space between label lines, in pixels. */
export const LINE_GAP = 1;
/** Space kept free on each side of a centred caption. */
const CAPTION_INSET = 2;

export interface TileGrid {
  readonly count: number;
  readonly columns: number;
  readonly rows: number;
  readonly tileWidth: number;
  readonly tileHeight: number;
  readonly gap: number;
  readonly margin: number;
  /** Whole sheet, margins included, before any footer. */
  readonly width: number;
  readonly height: number;
}

/** Grid for `count` tiles: one row up to 4 tiles, else ⌈√count⌉ columns, unless `columns` is given. */
export function tileGrid(
  count: number,
  tileWidth: number,
  tileHeight: number,
  options: { columns?: number; gap?: number; margin?: number } = {},
): TileGrid {
  const gap = options.gap ?? 12;
  const margin = options.margin ?? 12;
  const wanted = options.columns ?? (count <= 4 ? count : Math.ceil(Math.sqrt(count)));
  const columns = Math.max(1, Math.min(Math.max(1, count), Math.floor(wanted)));
  const rows = Math.max(1, Math.ceil(count / columns));
  return {
    count,
    columns,
    rows,
    tileWidth,
    tileHeight,
    gap,
    margin,
    width: 2 * margin + columns * tileWidth + (columns - 1) * gap,
    height: 2 * margin + rows * tileHeight + (rows - 1) * gap,
  };
}

/** Top-left corner of tile `index` (row-major). */
export function tileOrigin(grid: TileGrid, index: number): { x: number; y: number } {
  const column = index % grid.columns;
  const row = Math.floor(index / grid.columns);
  return {
    x: grid.margin + column * (grid.tileWidth + grid.gap),
    y: grid.margin + row * (grid.tileHeight + grid.gap),
  };
}

/** Height of `lines` label lines at LABEL_PX. */
export function labelBlockHeight(lines: number): number {
  return lines <= 0 ? 0 : lines * lineHeight(LABEL_PX) + (lines - 1) * LINE_GAP;
}

export interface LabelLine {
  readonly label: Label;
  readonly color: Rgb;
}

/** Draws rendered lines centred in a column of `width` pixels starting at (x, y). */
export function drawCentredLines(
  image: RgbImage,
  lines: readonly LabelLine[],
  x: number,
  y: number,
  width: number,
): void {
  lines.forEach(({ label, color }, i) => {
    const left = x + Math.max(0, Math.floor((width - label.width) / 2));
    drawLabel(image, label, left, y + i * (lineHeight(LABEL_PX) + LINE_GAP), color);
  });
}

/** Name lines the longest caption needs (1 or more, at most `maxLines`), so tiles reserve no empty rows. */
export async function nameLinesNeeded(
  names: readonly string[],
  width: number,
  maxLines: number,
): Promise<number> {
  const counts = await Promise.all(
    names.map(async (name) => (await wrapLabel(name, width - 2 * CAPTION_INSET, LABEL_PX, maxLines)).length),
  );
  return Math.max(1, ...counts);
}

/** A tile caption: the name wrapped onto at most `nameLines` lines, then a detail line in the dim colour. */
export async function captionLines(
  name: string,
  detail: string,
  width: number,
  nameLines: number,
): Promise<LabelLine[]> {
  const room = width - 2 * CAPTION_INSET;
  const wrapped = await wrapLabel(name, room, LABEL_PX, nameLines);
  const lines: LabelLine[] = wrapped.map((label) => ({ label, color: THEME.text }));
  lines.push({ label: await fitLabel(detail, room, LABEL_PX), color: THEME.dimText });
  return lines;
}

/** "42.1%" — share with one decimal, "<0.1%" for tiny non-zero shares so they do not read as empty. */
export function formatPercent(share: number): string {
  if (share > 0 && share < 0.0005) return '<0.1%';
  return `${(share * 100).toFixed(1)}%`;
}
