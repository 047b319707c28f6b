// Layout shared by the picture sheets (mask grid, attention maps): a dark theme and a grid of labelled tiles.
import { charsThatFit, drawText, lineHeight, textWidth, wrapText } from './font.ts';
import { hexColor, type Rgb, type RgbImage } from './raster.ts';

/** Dark theme, close to Discord's and Slack's dark mode so sheets sit quietly in a chat. */
export const THEME = {
  background: hexColor('#1e1f22'),
  text: hexColor('#f2f3f5'),
  dimText: hexColor('#a3a6ad'),
  emptyCell: hexColor('#2b2d31'),
  frame: hexColor('#5c5f66'),
} as const;

/** Text scale of sheet labels: 5×7 glyphs drawn at 2× read well in a chat client. */
export const LABEL_SCALE = 2;
/** Vertical space between label lines, in pixels. */
export const LINE_GAP = 3;

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

/** Height of `lines` label lines at LABEL_SCALE. */
export function labelBlockHeight(lines: number): number {
  return lines <= 0 ? 0 : lines * lineHeight(LABEL_SCALE) + (lines - 1) * LINE_GAP;
}

export interface LabelLine {
  readonly text: string;
  readonly color: Rgb;
}

/** Draws lines centred in a column of `width` pixels starting at (x, y); text is cut to fit. */
export function drawCentredLines(
  image: RgbImage,
  lines: readonly LabelLine[],
  x: number,
  y: number,
  width: number,
) {
  const maxChars = charsThatFit(width, LABEL_SCALE);
  lines.forEach((line, i) => {
    const text = wrapText(line.text, maxChars, 1)[0] ?? '';
    const left = x + Math.floor((width - textWidth(text, LABEL_SCALE)) / 2);
    drawText(image, text, left, y + i * (lineHeight(LABEL_SCALE) + LINE_GAP), LABEL_SCALE, line.color);
  });
}

/** Name lines the longest caption needs (1 or more, at most `maxLines`), so tiles reserve no empty rows. */
export function nameLinesNeeded(names: readonly string[], width: number, maxLines: number): number {
  const maxChars = charsThatFit(width, LABEL_SCALE);
  return Math.max(1, ...names.map((name) => wrapText(name, maxChars, maxLines).length));
}

/** A tile caption: the name wrapped onto at most `nameLines` lines, then a detail line in the dim colour. */
export function captionLines(name: string, detail: string, width: number, nameLines: number): LabelLine[] {
  const maxChars = charsThatFit(width, LABEL_SCALE);
  const wrapped = wrapText(name, maxChars, nameLines);
  const lines: LabelLine[] = wrapped.map((text) => ({ text, color: THEME.text }));
  lines.push({ text: detail, color: THEME.dimText });
  return lines;
}

/** "42.1%" — share with one decimal, "<0.1%" for tiny non-zero shares so they do not read as empty. */
export function formatPercent(share: number): string {
  if (share > 0 && share < 0.0005) return '<0.1%';
  return `${(share * 100).toFixed(1)}%`;
}
