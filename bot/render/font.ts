// A built-in 5×7 bitmap font (printable ASCII plus '…'), so labels render the same on every host:
// librsvg text would depend on which system fonts are installed and draw boxes where none are.
import { fillRect, type Rgb, type RgbImage } from './raster.ts';

/** Glyph box: 5 columns; rows 0–6 sit on the baseline, rows 7–8 are descenders (g, j, p, q, y, ',', ';', '_'). */
export const GLYPH_WIDTH = 5;
export const GLYPH_ROWS = 9;
const CAP_ROWS = 7;
/** Horizontal advance per character, in font pixels (glyph + one column of spacing). */
export const GLYPH_ADVANCE = GLYPH_WIDTH + 1;

// Each glyph: rows top to bottom separated by spaces, '#' = ink. Missing trailing rows are blank.
const GLYPH_ROWS_BY_CHAR: ReadonlyArray<readonly [string, string]> = [
  [' ', '..... ..... ..... ..... ..... ..... .....'],
  ['!', '..#.. ..#.. ..#.. ..#.. ..#.. ..... ..#..'],
  ['"', '.#.#. .#.#. .#.#. ..... ..... ..... .....'],
  ['#', '.#.#. .#.#. ##### .#.#. ##### .#.#. .#.#.'],
  ['$', '..#.. .#### #.#.. .###. ..#.# ####. ..#..'],
  ['%', '##... ##..# ...#. ..#.. .#... #..## ...##'],
  ['&', '.##.. #..#. #.#.. .#... #.#.# #..#. .##.#'],
  ["'", '..#.. ..#.. .#... ..... ..... ..... .....'],
  ['(', '...#. ..#.. .#... .#... .#... ..#.. ...#.'],
  [')', '.#... ..#.. ...#. ...#. ...#. ..#.. .#...'],
  ['*', '..... ..#.. #.#.# .###. #.#.# ..#.. .....'],
  ['+', '..... ..#.. ..#.. ##### ..#.. ..#.. .....'],
  [',', '..... ..... ..... ..... ..... .##.. .##.. ..#.. .#...'],
  ['-', '..... ..... ..... .###. ..... ..... .....'],
  ['.', '..... ..... ..... ..... ..... .##.. .##..'],
  ['/', '..... ....# ...#. ..#.. .#... #.... .....'],
  ['0', '.###. #...# #..## #.#.# ##..# #...# .###.'],
  ['1', '..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###.'],
  ['2', '.###. #...# ....# ...#. ..#.. .#... #####'],
  ['3', '##### ...#. ..#.. ...#. ....# #...# .###.'],
  ['4', '...#. ..##. .#.#. #..#. ##### ...#. ...#.'],
  ['5', '##### #.... ####. ....# ....# #...# .###.'],
  ['6', '..##. .#... #.... ####. #...# #...# .###.'],
  ['7', '##### ....# ...#. ..#.. .#... .#... .#...'],
  ['8', '.###. #...# #...# .###. #...# #...# .###.'],
  ['9', '.###. #...# #...# .#### ....# ...#. .##..'],
  [':', '..... .##.. .##.. ..... .##.. .##.. .....'],
  [';', '..... .##.. .##.. ..... .##.. .##.. ..#.. .#...'],
  ['<', '...#. ..#.. .#... #.... .#... ..#.. ...#.'],
  ['=', '..... ..... ##### ..... ##### ..... .....'],
  ['>', '.#... ..#.. ...#. ....# ...#. ..#.. .#...'],
  ['?', '.###. #...# ....# ...#. ..#.. ..... ..#..'],
  ['@', '.###. #...# ....# .##.# #.#.# #.#.# .###.'],
  ['A', '.###. #...# #...# ##### #...# #...# #...#'],
  ['B', '####. #...# #...# ####. #...# #...# ####.'],
  ['C', '.###. #...# #.... #.... #.... #...# .###.'],
  ['D', '###.. #..#. #...# #...# #...# #..#. ###..'],
  ['E', '##### #.... #.... ####. #.... #.... #####'],
  ['F', '##### #.... #.... ####. #.... #.... #....'],
  ['G', '.###. #...# #.... #.### #...# #...# .####'],
  ['H', '#...# #...# #...# ##### #...# #...# #...#'],
  ['I', '.###. ..#.. ..#.. ..#.. ..#.. ..#.. .###.'],
  ['J', '..### ...#. ...#. ...#. ...#. #..#. .##..'],
  ['K', '#...# #..#. #.#.. ##... #.#.. #..#. #...#'],
  ['L', '#.... #.... #.... #.... #.... #.... #####'],
  ['M', '#...# ##.## #.#.# #.#.# #...# #...# #...#'],
  ['N', '#...# #...# ##..# #.#.# #..## #...# #...#'],
  ['O', '.###. #...# #...# #...# #...# #...# .###.'],
  ['P', '####. #...# #...# ####. #.... #.... #....'],
  ['Q', '.###. #...# #...# #...# #.#.# #..#. .##.#'],
  ['R', '####. #...# #...# ####. #.#.. #..#. #...#'],
  ['S', '.#### #.... #.... .###. ....# ....# ####.'],
  ['T', '##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#..'],
  ['U', '#...# #...# #...# #...# #...# #...# .###.'],
  ['V', '#...# #...# #...# #...# #...# .#.#. ..#..'],
  ['W', '#...# #...# #...# #.#.# #.#.# #.#.# .#.#.'],
  ['X', '#...# #...# .#.#. ..#.. .#.#. #...# #...#'],
  ['Y', '#...# #...# .#.#. ..#.. ..#.. ..#.. ..#..'],
  ['Z', '##### ....# ...#. ..#.. .#... #.... #####'],
  ['[', '.###. .#... .#... .#... .#... .#... .###.'],
  ['\\', '..... #.... .#... ..#.. ...#. ....# .....'],
  [']', '.###. ...#. ...#. ...#. ...#. ...#. .###.'],
  ['^', '..#.. .#.#. #...# ..... ..... ..... .....'],
  ['_', '..... ..... ..... ..... ..... ..... ..... #####'],
  ['`', '.#... ..#.. ...#. ..... ..... ..... .....'],
  ['a', '..... ..... .###. ....# .#### #...# .####'],
  ['b', '#.... #.... #.##. ##..# #...# #...# ####.'],
  ['c', '..... ..... .###. #.... #.... #...# .###.'],
  ['d', '....# ....# .##.# #..## #...# #...# .####'],
  ['e', '..... ..... .###. #...# ##### #.... .###.'],
  ['f', '..##. .#..# .#... ###.. .#... .#... .#...'],
  ['g', '..... ..... .#### #...# #...# #...# .#### ....# .###.'],
  ['h', '#.... #.... #.##. ##..# #...# #...# #...#'],
  ['i', '..#.. ..... .##.. ..#.. ..#.. ..#.. .###.'],
  ['j', '...#. ..... ..##. ...#. ...#. ...#. ...#. #..#. .##..'],
  ['k', '#.... #.... #..#. #.#.. ##... #.#.. #..#.'],
  ['l', '.##.. ..#.. ..#.. ..#.. ..#.. ..#.. .###.'],
  ['m', '..... ..... ##.#. #.#.# #.#.# #...# #...#'],
  ['n', '..... ..... #.##. ##..# #...# #...# #...#'],
  ['o', '..... ..... .###. #...# #...# #...# .###.'],
  ['p', '..... ..... ####. #...# #...# #...# ####. #.... #....'],
  ['q', '..... ..... .#### #...# #...# #...# .#### ....# ....#'],
  ['r', '..... ..... #.##. ##..# #.... #.... #....'],
  ['s', '..... ..... .###. #.... .###. ....# ####.'],
  ['t', '.#... .#... ###.. .#... .#... .#..# ..##.'],
  ['u', '..... ..... #...# #...# #...# #..## .##.#'],
  ['v', '..... ..... #...# #...# #...# .#.#. ..#..'],
  ['w', '..... ..... #...# #...# #.#.# #.#.# .#.#.'],
  ['x', '..... ..... #...# .#.#. ..#.. .#.#. #...#'],
  ['y', '..... ..... #...# #...# #...# #...# .#### ....# .###.'],
  ['z', '..... ..... ##### ...#. ..#.. .#... #####'],
  ['{', '...#. ..#.. ..#.. .#... ..#.. ..#.. ...#.'],
  ['|', '..#.. ..#.. ..#.. ..#.. ..#.. ..#.. ..#..'],
  ['}', '.#... ..#.. ..#.. ...#. ..#.. ..#.. .#...'],
  ['~', '..... ..... .#... #.#.# ...#. ..... .....'],
  ['…', '..... ..... ..... ..... ..... ..... #.#.#'],
];

/** Ink bitmap per character: GLYPH_ROWS × GLYPH_WIDTH, row-major, 1 = ink. */
const GLYPHS: ReadonlyMap<string, Uint8Array> = new Map(
  GLYPH_ROWS_BY_CHAR.map(([char, art]) => {
    const rows = art.split(' ');
    if (rows.length < CAP_ROWS || rows.length > GLYPH_ROWS || rows.some((r) => r.length !== GLYPH_WIDTH)) {
      throw new Error(`bitmap font: glyph '${char}' is malformed`);
    }
    const bits = new Uint8Array(GLYPH_ROWS * GLYPH_WIDTH);
    rows.forEach((row, y) => {
      for (let x = 0; x < GLYPH_WIDTH; x++) bits[y * GLYPH_WIDTH + x] = row[x] === '#' ? 1 : 0;
    });
    return [char, bits] as const;
  }),
);
const FALLBACK = GLYPHS.get('?')!;

/** Characters the font can draw; anything else is drawn as '?'. */
export function hasGlyph(char: string): boolean {
  return GLYPHS.has(char);
}

/** Width in pixels of `text` at integer `scale` (no trailing spacing column). */
export function textWidth(text: string, scale: number): number {
  const n = [...text].length;
  return n === 0 ? 0 : (n * GLYPH_ADVANCE - 1) * scale;
}

/** Height in pixels of one line of text, descenders included. */
export function lineHeight(scale: number): number {
  return GLYPH_ROWS * scale;
}

/** Height of capitals above the baseline, in pixels: what a swatch beside the text should match. */
export function capHeight(scale: number): number {
  return CAP_ROWS * scale;
}

/** The most characters that fit in `width` pixels at `scale`. */
export function charsThatFit(width: number, scale: number): number {
  return Math.max(0, Math.floor((width / scale + 1) / GLYPH_ADVANCE));
}

/** Draws `text` with its top-left corner at (x, y); pixels outside the image are clipped. Returns the width drawn. */
export function drawText(
  image: RgbImage,
  text: string,
  x: number,
  y: number,
  scale: number,
  color: Rgb,
): number {
  let penX = x;
  for (const char of text) {
    const bits = GLYPHS.get(char) ?? FALLBACK;
    for (let gy = 0; gy < GLYPH_ROWS; gy++) {
      for (let gx = 0; gx < GLYPH_WIDTH; gx++) {
        if (bits[gy * GLYPH_WIDTH + gx])
          fillRect(image, penX + gx * scale, y + gy * scale, scale, scale, color);
      }
    }
    penX += GLYPH_ADVANCE * scale;
  }
  return textWidth(text, scale);
}

/** `text` cut to at most `maxChars` characters, ending in '…' when cut. */
export function truncateText(text: string, maxChars: number): string {
  const chars = [...text];
  if (chars.length <= maxChars) return text;
  if (maxChars <= 0) return '';
  return `${chars.slice(0, maxChars - 1).join('')}…`;
}

/**
 * Breaks `text` into at most `maxLines` lines of at most `maxChars` characters, preferring breaks after
 * a space, '-', '_' or '/' and before '(' (unless that leaves a line under half full); the last line ends
 * in '…' if text remains.
 */
export function wrapText(text: string, maxChars: number, maxLines: number): string[] {
  const lines: string[] = [];
  let rest = [...text.trim()];
  while (rest.length > 0 && lines.length < maxLines) {
    if (rest.length <= maxChars) {
      lines.push(rest.join(''));
      rest = [];
      break;
    }
    if (lines.length === maxLines - 1) {
      lines.push(truncateText(rest.join(''), maxChars));
      rest = [];
      break;
    }
    let cut = -1;
    for (let i = Math.min(maxChars, rest.length - 1); i > 0; i--) {
      const before = rest[i - 1];
      if (before === ' ' || before === '-' || before === '_' || before === '/' || rest[i] === '(') {
        cut = i;
        break;
      }
    }
    // A soft break that leaves the line under half full wastes a line: cut hard instead.
    if (cut < Math.ceil(maxChars / 2)) cut = maxChars;
    lines.push(rest.slice(0, cut).join('').trimEnd());
    rest = rest.slice(cut);
    while (rest[0] === ' ') rest.shift();
  }
  return lines;
}
