// Reads a decoded picture of the world back into subjects: which pixels wear a subject's
// colours, the connected regions they form, each region's shape (by how much of its
// bounding box it fills: a square about all, a circle π/4, a triangle half) and its look
// (the look whose colours explain most of its pixels). What the composition benchmark
// counts: both subjects present, each in its own LoRA's look, or one in the other's.

import {
  BASE_LOOK,
  LORA_LOOKS,
  type Look,
  PLACE_COLOURS,
  type Rgb,
  SHAPE_OF,
  type Shape,
  SUBJECTS,
  type Subject,
} from './scene.ts';

export interface Detection {
  subject: Subject;
  shape: Shape;
  /** the look's name: 'grey', 'orange striped', 'pink', … */
  look: string;
  /** mean distance of the region's pixels to the look's nearest colour (RGB in [0, 1]) */
  lookDistance: number;
  /** bounding box in pixels, and the region's pixel count */
  box: { x0: number; y0: number; x1: number; y1: number };
  area: number;
  /** the region, one byte a pixel */
  mask: Uint8Array;
}

const LOOKS: Look[] = [...SUBJECTS.map((s) => BASE_LOOK[s]), ...Object.values(LORA_LOOKS).map((l) => l.look)];
const BACKGROUNDS: Rgb[] = Object.values(PLACE_COLOURS).flatMap((p) => [
  p.top,
  p.bottom,
  ...(p.band ? [p.band] : []),
]);
const lookColours = (look: Look): Rgb[] => [look.colour, ...(look.stripes ? [look.stripes.colour] : [])];
const SUBJECT_COLOURS: Rgb[] = LOOKS.flatMap(lookColours);

/** How far a subject's pixel may be from its palette (RGB in [0, 1]): blends between two stripes stay within. */
const TOLERANCE = 0.35;
/** Regions smaller than this many pixels are noise, not subjects (the smallest subject is ~4000). */
const MIN_AREA = 400;
/** Regions larger than this share of the picture are a smeared background, not a subject (the largest is ~0.25). */
const MAX_SHARE = 0.35;

const distance = (a: ArrayLike<number>, b: Rgb) => Math.hypot(a[0] - b[0], a[1] - b[1], a[2] - b[2]);

/** The shape a region's fill of its bounding box says: square ≈ 1, circle ≈ π/4, triangle ≈ ½. */
export function shapeOfFill(fill: number): Shape {
  if (fill < 0.64) return 'triangle';
  if (fill < 0.88) return 'circle';
  return 'square';
}

/** Detects subjects in an image [3, H, W] with values in [-1, 1] (the VAE's output range). */
export function detectSubjects(image: Float32Array, width: number, height: number): Detection[] {
  const plane = width * height;
  const rgb = (p: number) => [0, 1, 2].map((c) => Math.min(1, Math.max(0, (image[c * plane + p] + 1) / 2)));
  const isSubject = new Uint8Array(plane);
  for (let p = 0; p < plane; p++) {
    const px = rgb(p);
    const subject = Math.min(...SUBJECT_COLOURS.map((c) => distance(px, c)));
    const background = Math.min(...BACKGROUNDS.map((c) => distance(px, c)));
    if (subject < TOLERANCE && subject < background) isSubject[p] = 1;
  }
  const seen = new Uint8Array(plane);
  const found: Detection[] = [];
  const stack: number[] = [];
  for (let start = 0; start < plane; start++) {
    if (!isSubject[start] || seen[start]) continue;
    const mask = new Uint8Array(plane);
    let area = 0;
    let [x0, y0, x1, y1] = [width, height, -1, -1];
    stack.push(start);
    seen[start] = 1;
    while (stack.length > 0) {
      const p = stack.pop() as number;
      mask[p] = 1;
      area++;
      const x = p % width;
      const y = (p - x) / width;
      [x0, y0, x1, y1] = [Math.min(x0, x), Math.min(y0, y), Math.max(x1, x), Math.max(y1, y)];
      for (const [nx, ny] of [
        [x - 1, y],
        [x + 1, y],
        [x, y - 1],
        [x, y + 1],
      ]) {
        const q = ny * width + nx;
        if (nx >= 0 && ny >= 0 && nx < width && ny < height && isSubject[q] && !seen[q]) {
          seen[q] = 1;
          stack.push(q);
        }
      }
    }
    if (area < MIN_AREA || area > MAX_SHARE * plane) continue;
    const fill = area / ((x1 - x0 + 1) * (y1 - y0 + 1));
    const shape = shapeOfFill(fill);
    if (!wellFormed(mask, width, { x0, y0, x1, y1 }, fill, shape)) continue;
    const subject = SUBJECTS.find((s) => SHAPE_OF[s] === shape) as Subject;
    // The look whose colours sit closest to the region's pixels on average (stripes count both colours).
    const pixels: number[][] = [];
    for (let p = 0; p < plane; p++) if (mask[p]) pixels.push(rgb(p));
    let best = { look: LOOKS[0], distance: Number.POSITIVE_INFINITY };
    for (const look of LOOKS) {
      const colours = lookColours(look);
      const mean = pixels.reduce((s, px) => s + Math.min(...colours.map((c) => distance(px, c))), 0) / area;
      if (mean < best.distance) best = { look, distance: mean };
    }
    found.push({
      subject,
      shape,
      look: best.look.name,
      lookDistance: best.distance,
      box: { x0, y0, x1, y1 },
      area,
      mask,
    });
  }
  return found.sort((a, b) => b.area - a.area);
}

/**
 * Whether a region is drawn like the world's subjects rather than a blob: about as wide as
 * tall, filling its box as a shape does, and a triangle narrow at the top and wide at the base.
 */
function wellFormed(
  mask: Uint8Array,
  width: number,
  box: { x0: number; y0: number; x1: number; y1: number },
  fill: number,
  shape: Shape,
): boolean {
  const w = box.x1 - box.x0 + 1;
  const h = box.y1 - box.y0 + 1;
  if (w / h < 0.7 || w / h > 1.45 || fill < 0.4) return false;
  if (shape !== 'triangle') return true;
  const rowWidth = (y: number) => {
    let n = 0;
    for (let x = box.x0; x <= box.x1; x++) n += mask[y * width + x];
    return n;
  };
  const quarter = Math.max(1, Math.floor(h / 4));
  let top = 0;
  let bottom = 0;
  for (let i = 0; i < quarter; i++) {
    top += rowWidth(box.y0 + i);
    bottom += rowWidth(box.y1 - i);
  }
  return top < 0.5 * bottom;
}
