// The in-memory picture every renderer draws on: 8-bit RGB, row-major, no alpha. Drawing happens here in
// plain JS so output pixels are exact and the same on every host; sharp only encodes and resizes.

/** An sRGB colour, each channel 0–255. */
export type Rgb = readonly [number, number, number];

/** An 8-bit RGB picture, HWC layout: data[(y·width + x)·3 + channel]. */
export interface RgbImage {
  readonly width: number;
  readonly height: number;
  readonly data: Uint8Array;
}

export function createImage(width: number, height: number, background: Rgb): RgbImage {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new RangeError(`image size must be positive integers, got ${width}×${height}`);
  }
  const image = { width, height, data: new Uint8Array(width * height * 3) };
  fillRect(image, 0, 0, width, height, background);
  return image;
}

/** Checks that `data` holds width·height RGB pixels. */
export function assertRgbImage(image: RgbImage, what: string): void {
  const { width, height, data } = image;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new RangeError(`${what}: size must be positive integers, got ${width}×${height}`);
  }
  if (data.length !== width * height * 3) {
    throw new RangeError(
      `${what}: expected ${width}×${height}×3 = ${width * height * 3} bytes, got ${data.length}`,
    );
  }
}

/** Fills the rectangle, clipped to the image. */
export function fillRect(image: RgbImage, x: number, y: number, w: number, h: number, color: Rgb): void {
  const x0 = Math.max(0, x);
  const y0 = Math.max(0, y);
  const x1 = Math.min(image.width, x + w);
  const y1 = Math.min(image.height, y + h);
  const { data } = image;
  for (let row = y0; row < y1; row++) {
    for (let col = x0; col < x1; col++) {
      const i = (row * image.width + col) * 3;
      data[i] = color[0];
      data[i + 1] = color[1];
      data[i + 2] = color[2];
    }
  }
}

/** Draws a rectangle border `thickness` pixels wide, inside the given bounds. */
export function strokeRect(
  image: RgbImage,
  x: number,
  y: number,
  w: number,
  h: number,
  thickness: number,
  color: Rgb,
): void {
  fillRect(image, x, y, w, thickness, color);
  fillRect(image, x, y + h - thickness, w, thickness, color);
  fillRect(image, x, y, thickness, h, color);
  fillRect(image, x + w - thickness, y, thickness, h, color);
}

/** Copies `source` into `target` with its top-left corner at (x, y), clipped. */
export function blit(target: RgbImage, source: RgbImage, x: number, y: number): void {
  const x0 = Math.max(0, x);
  const x1 = Math.min(target.width, x + source.width);
  if (x1 <= x0) return;
  for (let row = Math.max(0, y); row < Math.min(target.height, y + source.height); row++) {
    const from = ((row - y) * source.width + (x0 - x)) * 3;
    target.data.set(source.data.subarray(from, from + (x1 - x0) * 3), (row * target.width + x0) * 3);
  }
}

/** Mixes `over` onto `under` with opacity alpha ∈ [0, 1], rounded to the nearest 8-bit value. */
export function mixChannel(under: number, over: number, alpha: number): number {
  return Math.round(under + (over - under) * alpha);
}

/** Parses '#rrggbb'. */
export function hexColor(hex: string): Rgb {
  const match = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(hex);
  if (!match) throw new Error(`not a #rrggbb colour: '${hex}'`);
  return [Number.parseInt(match[1]!, 16), Number.parseInt(match[2]!, 16), Number.parseInt(match[3]!, 16)];
}

/** The image enlarged `factor` times, each pixel a factor × factor block (crisp, no new colours). */
export function upscaleNearest(image: RgbImage, factor: number): RgbImage {
  if (!Number.isInteger(factor) || factor < 1)
    throw new RangeError(`upscale factor must be a whole number ≥ 1, got ${factor}`);
  const width = image.width * factor;
  const out = {
    width,
    height: image.height * factor,
    data: new Uint8Array(width * image.height * factor * 3),
  };
  for (let y = 0; y < out.height; y++) {
    const from = Math.floor(y / factor) * image.width;
    for (let x = 0; x < width; x++) {
      const s = (from + Math.floor(x / factor)) * 3;
      out.data.set(image.data.subarray(s, s + 3), (y * width + x) * 3);
    }
  }
  return out;
}
