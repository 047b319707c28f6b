// RGB pixels → file bytes that fit an upload limit: PNG, else WebP, else JPEG at falling quality, else smaller.
import sharp from 'sharp';
import { userCommentExif, withJpegExif, withWebpExif } from './exif.ts';
import { MIN_ENCODE_BYTES } from './limits.ts';
import { type PngTextEntry, withPngText } from './png-text.ts';
import { assertRgbImage, type RgbImage } from './raster.ts';

export type ImageFormat = 'png' | 'webp' | 'jpeg';

export interface EncodeOptions {
  /** Hard upper bound on the encoded size, in bytes (≥ MIN_ENCODE_BYTES). */
  readonly maxBytes: number;
  /** First format to try; later steps of the ladder are tried only when it does not fit. Default 'png'. */
  readonly prefer?: ImageFormat;
  /**
   * Text the file carries: PNG text chunks; in a WebP or JPEG, the first entry (A1111's `parameters`) as EXIF
   * UserComment, where A1111 and Civitai look. Counted in maxBytes.
   */
  readonly text?: readonly PngTextEntry[];
}

export interface EncodedImage {
  readonly bytes: Buffer;
  readonly format: ImageFormat;
  readonly mime: 'image/png' | 'image/webp' | 'image/jpeg';
  readonly ext: 'png' | 'webp' | 'jpg';
  /** Size of the encoded picture: smaller than the input when the ladder had to downscale. */
  readonly width: number;
  readonly height: number;
  /** Quality setting of a lossy encoding; absent for PNG. */
  readonly quality?: number;
}

interface LadderStep {
  readonly format: ImageFormat;
  readonly quality?: number;
}

const WEBP_QUALITIES = [90, 80, 70, 60];
const JPEG_QUALITIES = [85, 75, 65, 55, 45];
/** Downscaling stops here: at 8×8 a WebP is about 100 bytes, well under MIN_ENCODE_BYTES. */
const MIN_SIDE = 8;
const MAX_DOWNSCALE_ROUNDS = 16;

const MIME = { png: 'image/png', webp: 'image/webp', jpeg: 'image/jpeg' } as const;
const EXT = { png: 'png', webp: 'webp', jpeg: 'jpg' } as const;

function ladder(prefer: ImageFormat, lossless: boolean): LadderStep[] {
  const steps: LadderStep[] = [];
  if (lossless && prefer === 'png') steps.push({ format: 'png' });
  if (prefer !== 'jpeg') for (const quality of WEBP_QUALITIES) steps.push({ format: 'webp', quality });
  for (const quality of JPEG_QUALITIES) steps.push({ format: 'jpeg', quality });
  return steps;
}

// Output bytes depend only on pixels and these options: sharp strips metadata by default (no timestamps,
// no ICC profile), PNG is truecolour (palette quantisation is off), and neither libvips' thread count nor
// its cache changes encoder output. They may change with a different libvips/zlib-ng/libwebp build.
async function encodeStep(
  image: RgbImage,
  step: LadderStep,
  text: readonly PngTextEntry[] = [],
): Promise<Buffer> {
  const pixels = await encodePixels(image, step);
  if (text.length === 0) return pixels;
  if (step.format === 'png') return withPngText(pixels, text);
  const exif = userCommentExif(text[0]!.text);
  return step.format === 'webp'
    ? withWebpExif(pixels, exif, image.width, image.height)
    : withJpegExif(pixels, exif);
}

function encodePixels(image: RgbImage, step: LadderStep): Promise<Buffer> {
  const input = sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } });
  switch (step.format) {
    case 'png':
      return input.png({ compressionLevel: 9, adaptiveFiltering: true, palette: false }).toBuffer();
    case 'webp':
      return input.webp({ quality: step.quality, effort: 4 }).toBuffer();
    case 'jpeg':
      return input.jpeg({ quality: step.quality, mozjpeg: true }).toBuffer();
  }
}

/** Lossless PNG of `image`, no size limit: for pictures whose pixels matter exactly (tests, overlays). */
export function encodePng(image: RgbImage, text: readonly PngTextEntry[] = []): Promise<Buffer> {
  assertRgbImage(image, 'encodePng');
  return encodeStep(image, { format: 'png' }, text);
}

/** The pixels of an encoded picture (PNG, WebP, JPEG), alpha dropped. */
export async function decodePicture(bytes: Uint8Array): Promise<RgbImage> {
  const { data, info } = await sharp(bytes).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return {
    width: info.width,
    height: info.height,
    data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
  };
}

/** Resamples `image` to width × height (Lanczos 3), deterministically. */
export async function resizeImage(image: RgbImage, width: number, height: number): Promise<RgbImage> {
  const data = await sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } })
    .resize(width, height, { fit: 'fill', kernel: 'lanczos3' })
    .raw()
    .toBuffer();
  return { width, height, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

/**
 * Encodes RGB pixels (HWC, width·height·3 bytes) into at most `maxBytes` bytes: PNG when it fits, else WebP
 * at quality 90…60, then JPEG at 85…45, then the lossy ladder again on a downscaled copy (area scaled by the
 * size overshoot) until it fits. Same input and options → same bytes.
 */
export async function encodeImage(
  rgb: Uint8Array,
  width: number,
  height: number,
  options: EncodeOptions,
): Promise<EncodedImage> {
  const { maxBytes, prefer = 'png', text } = options;
  if (!Number.isFinite(maxBytes) || maxBytes < MIN_ENCODE_BYTES) {
    throw new RangeError(`encodeImage: maxBytes must be at least ${MIN_ENCODE_BYTES}, got ${maxBytes}`);
  }
  const original: RgbImage = { width, height, data: rgb };
  assertRgbImage(original, 'encodeImage');

  let current = original;
  for (let round = 0; round <= MAX_DOWNSCALE_ROUNDS; round++) {
    let smallest = Number.POSITIVE_INFINITY;
    for (const step of ladder(prefer, round === 0)) {
      const bytes = await encodeStep(current, step, text);
      if (bytes.length <= maxBytes) {
        return {
          bytes,
          format: step.format,
          mime: MIME[step.format],
          ext: EXT[step.format],
          width: current.width,
          height: current.height,
          ...(step.quality === undefined ? {} : { quality: step.quality }),
        };
      }
      smallest = Math.min(smallest, bytes.length);
    }
    const side = Math.max(current.width, current.height);
    if (side <= MIN_SIDE) break;
    // Bytes grow roughly with area, so scale each side by √(budget / smallest attempt), with some margin.
    const factor = Math.min(0.85, Math.max(0.1, 0.9 * Math.sqrt(maxBytes / smallest)));
    const scale = Math.max(factor, MIN_SIDE / side);
    current = await resizeImage(
      original,
      Math.max(1, Math.round(current.width * scale)),
      Math.max(1, Math.round(current.height * scale)),
    );
  }
  throw new Error(`encodeImage: could not fit a ${width}×${height} picture into ${maxBytes} bytes`);
}

/** encodeImage for an RgbImage. */
export function encodeRgbImage(image: RgbImage, options: EncodeOptions): Promise<EncodedImage> {
  return encodeImage(image.data, image.width, image.height, options);
}
