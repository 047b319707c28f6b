// Reads a decoded picture of the world back into subjects: where the picture departs from
// its background, the connected regions that makes, each region's shape (read from its
// silhouette) and its look (the look whose colours explain its pixels). What the
// composition benchmark counts: both subjects present, each in its own LoRA's look, or one
// in the other's.
//
// A model's pictures are not the drawn ones: a house may come out greenish, a grey cat
// lavender, a square with rounded corners. So nothing here compares against the drawn
// palette where the picture itself can answer. The world's places are horizontal bands and
// no subject reaches the left or right edge (scenes keep a margin of a latent cell), so each
// row's background is read from that row's two ends; a subject is what differs from it.

import {
  BASE_LOOK,
  LORA_LOOKS,
  type Look,
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
const lookColours = (look: Look): Rgb[] => [look.colour, ...(look.stripes ? [look.stripes.colour] : [])];
const LOOK_COLOURS = LOOKS.flatMap(lookColours);

/** How far (RGB in [0, 1]) a pixel must be from its row's background to be part of a subject. */
const FOREGROUND = 0.15;
/** …or this far, whatever its colour. */
const STANDS_OUT = 0.26;
/** How near (RGB in [0, 1]) a subject's pixels sit to its own colours. */
const COHERENT = 0.25;
/** Regions smaller than this share of the picture are noise (the smallest subject is ~6 %). */
const MIN_SHARE = 0.006;
/** Regions larger than this share of the picture are a smeared background, not a subject (the largest is ~0.25). */
const MAX_SHARE = 0.35;
/** Boxes further than this from square are bars and smears, not subjects. */
const ASPECT = { min: 0.7, max: 1.45 };

/**
 * Silhouettes of the shapes in their bounding box: the width at a quarter and three quarters
 * of the height against the width at half, the same for heights across the width, and the
 * share of the box filled. Ratios, so that a blurred edge, which narrows a shape everywhere
 * alike, does not turn a square into a circle. A triangle stands on its base.
 */
const SILHOUETTES: Record<Shape, readonly number[]> = {
  circle: [0.866, 0.866, 0.866, 0.866, Math.PI / 4],
  square: [1, 1, 1, 1, 1],
  triangle: [0.5, 1.5, 0.5, 0.5, 0.5],
};
/** A silhouette further than this (root mean square) from every shape's is a blob. */
const SILHOUETTE_TOLERANCE = 0.16;

const distance = (a: ArrayLike<number>, b: ArrayLike<number>) =>
  Math.hypot(a[0] - b[0], a[1] - b[1], a[2] - b[2]);

interface Box {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

/** A connected set of pixels: its mask over the picture, bounding box and pixel count. */
type Region = { mask: Uint8Array; box: Box; area: number };

/** A region's silhouette, the figures of SILHOUETTES. */
export function silhouetteOf(mask: Uint8Array, width: number, box: Box): number[] {
  const w = box.x1 - box.x0 + 1;
  const h = box.y1 - box.y0 + 1;
  // The share of the box a band of lines fills: rows at a fraction of the height, or columns
  // at a fraction of the width, the band a twentieth of the box either side.
  const share = (f: number, across: boolean) => {
    const [from, to, length] = across ? [box.y0, box.y1, w] : [box.x0, box.x1, h];
    const centre = from + Math.round(f * (to - from));
    const band = Math.max(1, Math.round((to - from + 1) / 20));
    const [first, last] = [Math.max(from, centre - band), Math.min(to, centre + band)];
    let n = 0;
    for (let line = first; line <= last; line++)
      for (let k = 0; k < length; k++)
        n += across ? mask[line * width + box.x0 + k] : mask[(box.y0 + k) * width + line];
    return n / ((last - first + 1) * length);
  };
  const rowShare = (f: number) => share(f, true);
  const columnShare = (f: number) => share(f, false);
  let area = 0;
  for (let y = box.y0; y <= box.y1; y++) for (let x = box.x0; x <= box.x1; x++) area += mask[y * width + x];
  const across = rowShare(0.5);
  const down = columnShare(0.5);
  return [
    rowShare(0.25) / across,
    rowShare(0.75) / across,
    columnShare(0.25) / down,
    columnShare(0.75) / down,
    area / (w * h),
  ];
}

/** The shape whose silhouette a region's is nearest, or undefined for a blob like none of them. */
export function shapeOf(mask: Uint8Array, width: number, box: Box): Shape | undefined {
  const w = box.x1 - box.x0 + 1;
  const h = box.y1 - box.y0 + 1;
  if (w / h < ASPECT.min || w / h > ASPECT.max) return undefined;
  const figures = silhouetteOf(mask, width, box);
  let best: { shape?: Shape; error: number } = { error: SILHOUETTE_TOLERANCE };
  for (const [shape, template] of Object.entries(SILHOUETTES) as [Shape, readonly number[]][]) {
    const error = Math.sqrt(figures.reduce((s, v, i) => s + (v - template[i]) ** 2, 0) / figures.length);
    if (error < best.error) best = { shape, error };
  }
  return best.shape;
}

/** Per channel, the median of some colours. */
function medianColour(colours: readonly number[][]): number[] {
  return [0, 1, 2].map((c) => {
    const values = colours.map((s) => s[c]).sort((a, b) => a - b);
    return values[values.length >> 1];
  });
}

/** Per row, the background's colour: the median of the row's two ends, over a few neighbouring rows. */
function rowBackgrounds(rgb: (p: number) => number[], width: number, height: number): Float32Array {
  const strip = Math.max(2, Math.round(width / 64));
  const reach = Math.max(1, Math.round(height / 64));
  const out = new Float32Array(3 * height);
  for (let y = 0; y < height; y++) {
    const left: number[][] = [];
    const right: number[][] = [];
    for (let yy = Math.max(0, y - reach); yy <= Math.min(height - 1, y + reach); yy++)
      for (let i = 1; i <= strip; i++) {
        left.push(rgb(yy * width + i));
        right.push(rgb(yy * width + width - 1 - i));
      }
    out.set(medianColour([...left, ...right]), 3 * y);
  }
  return out;
}

/** The mask opened by a square of `radius`: specks and threads go, shapes stay. */
function opened(mask: Uint8Array, width: number, height: number, radius: number): Uint8Array {
  const pass = (src: Uint8Array, keep: (all: boolean, any: boolean) => boolean) => {
    const dst = new Uint8Array(src.length);
    for (let y = 0; y < height; y++)
      for (let x = 0; x < width; x++) {
        let all = true;
        let any = false;
        for (let dy = -radius; dy <= radius; dy++)
          for (let dx = -radius; dx <= radius; dx++) {
            const nx = Math.min(width - 1, Math.max(0, x + dx));
            const ny = Math.min(height - 1, Math.max(0, y + dy));
            const v = src[ny * width + nx] === 1;
            all &&= v;
            any ||= v;
          }
        dst[y * width + x] = keep(all, any) ? 1 : 0;
      }
    return dst;
  };
  return pass(
    pass(mask, (all) => all),
    (_, any) => any,
  );
}

/** Connected regions (4-neighbours) of a mask, with their boxes and sizes. */
function regions(mask: Uint8Array, width: number, height: number): Region[] {
  const seen = new Uint8Array(mask.length);
  const out: Region[] = [];
  const stack: number[] = [];
  for (let start = 0; start < mask.length; start++) {
    if (!mask[start] || seen[start]) continue;
    const region = new Uint8Array(mask.length);
    const box = { x0: width, y0: height, x1: -1, y1: -1 };
    let area = 0;
    stack.push(start);
    seen[start] = 1;
    while (stack.length > 0) {
      const p = stack.pop() as number;
      region[p] = 1;
      area++;
      const x = p % width;
      const y = (p - x) / width;
      box.x0 = Math.min(box.x0, x);
      box.y0 = Math.min(box.y0, y);
      box.x1 = Math.max(box.x1, x);
      box.y1 = Math.max(box.y1, y);
      for (const q of [x > 0 ? p - 1 : -1, x < width - 1 ? p + 1 : -1, p - width, p + width]) {
        if (q >= 0 && q < mask.length && mask[q] && !seen[q]) {
          seen[q] = 1;
          stack.push(q);
        }
      }
    }
    out.push({ mask: region, box, area });
  }
  return out;
}

const pixelReader = (image: Float32Array, plane: number) => (p: number) =>
  [0, 1, 2].map((c) => Math.min(1, Math.max(0, (image[c * plane + p] + 1) / 2)));

/** The pixels (one byte each) that differ from their row's background, specks removed. */
export function foregroundOf(image: Float32Array, width: number, height: number): Uint8Array {
  const plane = width * height;
  const rgb = pixelReader(image, plane);
  const background = rowBackgrounds(rgb, width, height);
  const foreground = new Uint8Array(plane);
  for (let p = 0; p < plane; p++) {
    const y = Math.floor(p / width);
    const px = rgb(p);
    const fromBackground = distance(px, background.subarray(3 * y, 3 * y + 3));
    const fromLooks = Math.min(...LOOK_COLOURS.map((c) => distance(px, c)));
    if (fromBackground > STANDS_OUT || (fromBackground > FOREGROUND && fromLooks < fromBackground))
      foreground[p] = 1;
  }
  return opened(foreground, width, height, Math.max(1, Math.round(width / 128)));
}

/** The look whose colours sit closest to a region's pixels on average (stripes count both colours). */
function nearestLook(pixels: readonly number[][]): { look: Look; distance: number } {
  let best = { look: LOOKS[0], distance: Number.POSITIVE_INFINITY };
  for (const look of LOOKS) {
    const colours = lookColours(look);
    const mean =
      pixels.reduce((s, px) => s + Math.min(...colours.map((c) => distance(px, c))), 0) / pixels.length;
    if (mean < best.distance) best = { look, distance: mean };
  }
  return best;
}

/**
 * A region that is no shape may be a subject with a patch of background grown onto it: keep
 * the pixels near its own colours (its median, and its nearest look's) and try the largest
 * piece that leaves.
 */
function withoutStrays(
  region: { mask: Uint8Array },
  rgb: (p: number) => number[],
  width: number,
  height: number,
): Region | undefined {
  const at: number[] = [];
  for (let p = 0; p < region.mask.length; p++) if (region.mask[p]) at.push(p);
  const pixels = at.map(rgb);
  const median = [0, 1, 2].map((c) => {
    const v = pixels.map((px) => px[c]).sort((a, b) => a - b);
    return v[v.length >> 1];
  });
  const colours = [median, ...lookColours(nearestLook(pixels).look)];
  const kept = new Uint8Array(region.mask.length);
  at.forEach((p, i) => {
    if (Math.min(...colours.map((c) => distance(pixels[i], c))) < COHERENT) kept[p] = 1;
  });
  const pieces = regions(opened(kept, width, height, Math.max(1, Math.round(width / 128))), width, height);
  return pieces.sort((a, b) => b.area - a.area)[0];
}

/**
 * A region that is no shape may be two subjects grown together (a model does not always keep
 * them apart): split its pixels into two colour groups (2-means, started from the two most
 * different colours) and give each group's pieces their own chance.
 */
function coloursApart(
  region: { mask: Uint8Array },
  rgb: (p: number) => number[],
  width: number,
  height: number,
): Region[] {
  const at: number[] = [];
  for (let p = 0; p < region.mask.length; p++) if (region.mask[p]) at.push(p);
  const pixels = at.map(rgb);
  const farthest = (from: readonly number[]) =>
    pixels.reduce((best, px) => (distance(px, from) > distance(best, from) ? px : best), pixels[0]);
  const centres = [farthest(pixels[0])];
  centres.push(farthest(centres[0]));
  const group = new Uint8Array(pixels.length);
  for (let round = 0; round < 8; round++) {
    pixels.forEach((px, i) => {
      group[i] = distance(px, centres[0]) <= distance(px, centres[1]) ? 0 : 1;
    });
    for (const k of [0, 1]) {
      const members = pixels.filter((_, i) => group[i] === k);
      if (members.length > 0)
        centres[k] = [0, 1, 2].map((c) => members.reduce((s, px) => s + px[c], 0) / members.length);
    }
  }
  return [0, 1].flatMap((k) => {
    const mask = new Uint8Array(region.mask.length);
    at.forEach((p, i) => {
      if (group[i] === k) mask[p] = 1;
    });
    return regions(opened(mask, width, height, Math.max(1, Math.round(width / 128))), width, height);
  });
}

/** Detects subjects in an image [3, H, W] with values in [-1, 1] (the VAE's output range). */
export function detectSubjects(image: Float32Array, width: number, height: number): Detection[] {
  const plane = width * height;
  const rgb = pixelReader(image, plane);
  const sized = (r: Region) => r.area >= MIN_SHARE * plane && r.area <= MAX_SHARE * plane;
  const shaped = (r: Region | undefined) => {
    const shape = r && sized(r) ? shapeOf(r.mask, width, r.box) : undefined;
    return shape && r ? [{ region: r, shape }] : [];
  };
  const found: Detection[] = [];
  for (const candidate of regions(foregroundOf(image, width, height), width, height)) {
    if (candidate.area < MIN_SHARE * plane) continue;
    // The region as it is; else without strays grown onto it; else as two subjects grown together.
    let subjects = shaped(candidate);
    if (subjects.length === 0) subjects = shaped(withoutStrays(candidate, rgb, width, height));
    if (subjects.length === 0) subjects = coloursApart(candidate, rgb, width, height).flatMap(shaped);
    for (const { region, shape } of subjects) {
      const { mask, box, area } = region;
      const pixels: number[][] = [];
      for (let p = 0; p < plane; p++) if (mask[p]) pixels.push(rgb(p));
      const best = nearestLook(pixels);
      const subject = SUBJECTS.find((s) => SHAPE_OF[s] === shape) as Subject;
      found.push({ subject, shape, look: best.look.name, lookDistance: best.distance, box, area, mask });
    }
  }
  return found.sort((a, b) => b.area - a.area);
}
