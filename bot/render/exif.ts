// EXIF UserComment for the WebP/JPEG fallbacks, where A1111 and Civitai look for the parameters text.
// libvips writes UserComment as ASCII only (café → cafe, 猫 → ?), so the block is built here with the
// UNICODE character code (UTF-16, big-endian like the rest of the block) and spliced into the file.

const EXIF_IFD_POINTER = 0x8769;
const USER_COMMENT = 0x9286;
const LONG = 4;
const UNDEFINED = 7;
const UNICODE_CODE = Buffer.from('UNICODE\0', 'latin1');
const ASCII_CODE = Buffer.from('ASCII\0\0\0', 'latin1');

/** A big-endian TIFF block: IFD0 → Exif IFD → UserComment = `text`. */
export function userCommentExif(text: string): Buffer {
  const utf16 = Buffer.from(text, 'utf16le').swap16();
  const comment = Buffer.concat([UNICODE_CODE, utf16]);
  const exifIfd = 8 + 2 + 12 + 4;
  const data = exifIfd + 2 + 12 + 4;
  const out = Buffer.alloc(data + comment.length);
  out.write('MM', 0, 'latin1');
  out.writeUInt16BE(42, 2);
  out.writeUInt32BE(8, 4);
  out.writeUInt16BE(1, 8);
  out.writeUInt16BE(EXIF_IFD_POINTER, 10);
  out.writeUInt16BE(LONG, 12);
  out.writeUInt32BE(1, 14);
  out.writeUInt32BE(exifIfd, 18);
  out.writeUInt32BE(0, 22);
  out.writeUInt16BE(1, exifIfd);
  out.writeUInt16BE(USER_COMMENT, exifIfd + 2);
  out.writeUInt16BE(UNDEFINED, exifIfd + 4);
  out.writeUInt32BE(comment.length, exifIfd + 6);
  out.writeUInt32BE(data, exifIfd + 10);
  out.writeUInt32BE(0, exifIfd + 14);
  comment.copy(out, data);
  return out;
}

/** The UserComment of a TIFF/EXIF block (either byte order, UNICODE or ASCII code), if it has one. */
export function readUserComment(tiff: Uint8Array): string | undefined {
  const b = Buffer.from(tiff.buffer, tiff.byteOffset, tiff.byteLength);
  const start = b.toString('latin1', 0, 6) === 'Exif\0\0' ? 6 : 0;
  const little = b.toString('latin1', start, start + 2) === 'II';
  const u16 = (at: number) => (little ? b.readUInt16LE(start + at) : b.readUInt16BE(start + at));
  const u32 = (at: number) => (little ? b.readUInt32LE(start + at) : b.readUInt32BE(start + at));
  const find = (ifd: number, tag: number): number | undefined => {
    const count = u16(ifd);
    for (let i = 0; i < count; i++) if (u16(ifd + 2 + 12 * i) === tag) return ifd + 2 + 12 * i;
    return undefined;
  };
  try {
    const pointer = find(u32(4), EXIF_IFD_POINTER);
    if (pointer === undefined) return undefined;
    const entry = find(u32(pointer + 8), USER_COMMENT);
    if (entry === undefined) return undefined;
    const length = u32(entry + 4);
    const value = b.subarray(start + u32(entry + 8), start + u32(entry + 8) + length);
    const code = value.subarray(0, 8);
    const body = Buffer.from(value.subarray(8));
    if (code.equals(UNICODE_CODE)) return (little ? body : body.swap16()).toString('utf16le');
    if (code.equals(ASCII_CODE)) return body.toString('latin1').replace(/\0+$/, '');
    return undefined;
  } catch {
    return undefined;
  }
}

/** The JPEG with an APP1 "Exif" segment holding `tiff`, right after the start-of-image marker. */
export function withJpegExif(jpeg: Uint8Array, tiff: Buffer): Buffer {
  const bytes = Buffer.from(jpeg.buffer, jpeg.byteOffset, jpeg.byteLength);
  if (bytes[0] !== 0xff || bytes[1] !== 0xd8) throw new RangeError('withJpegExif: not a JPEG file');
  const payload = Buffer.concat([Buffer.from('Exif\0\0', 'latin1'), tiff]);
  if (payload.length + 2 > 0xffff) throw new RangeError('withJpegExif: EXIF text longer than a JPEG segment');
  const header = Buffer.from([0xff, 0xe1, 0, 0]);
  header.writeUInt16BE(payload.length + 2, 2);
  return Buffer.concat([bytes.subarray(0, 2), header, payload, bytes.subarray(2)]);
}

function riffChunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.write(type, 0, 'latin1');
  head.writeUInt32LE(data.length, 4);
  return Buffer.concat([head, data, data.length % 2 ? Buffer.alloc(1) : Buffer.alloc(0)]);
}

/** The WebP in its extended form (VP8X) with an EXIF chunk holding `tiff`. */
export function withWebpExif(webp: Uint8Array, tiff: Buffer, width: number, height: number): Buffer {
  const bytes = Buffer.from(webp.buffer, webp.byteOffset, webp.byteLength);
  if (bytes.toString('latin1', 0, 4) !== 'RIFF' || bytes.toString('latin1', 8, 12) !== 'WEBP') {
    throw new RangeError('withWebpExif: not a WebP file');
  }
  let chunks = bytes.subarray(12);
  let header: Buffer;
  if (chunks.toString('latin1', 0, 4) === 'VP8X') {
    header = Buffer.from(chunks.subarray(0, 18));
    chunks = chunks.subarray(18);
  } else {
    header = Buffer.alloc(18);
    header.write('VP8X', 0, 'latin1');
    header.writeUInt32LE(10, 4);
    header.writeUIntLE(width - 1, 12, 3);
    header.writeUIntLE(height - 1, 15, 3);
  }
  header[8] = header[8]! | 0x08; // the EXIF flag
  const body = Buffer.concat([header, chunks, riffChunk('EXIF', tiff)]);
  const riff = Buffer.alloc(12);
  riff.write('RIFF', 0, 'latin1');
  riff.writeUInt32LE(body.length + 4, 4);
  riff.write('WEBP', 8, 'latin1');
  return Buffer.concat([riff, body]);
}
