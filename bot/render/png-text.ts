// PNG text chunks (tEXt, iTXt, zTXt): sharp reads them but cannot write them, so they are spliced in here.
import { crc32, inflateSync } from 'node:zlib';

/** One keyword → text pair, as A1111's "PNG Info" and Civitai show them. */
export interface PngTextEntry {
  readonly keyword: string;
  readonly text: string;
}

/** Compressed text is inflated to at most this much: an uploaded file must not expand into gigabytes. */
const MAX_TEXT_BYTES = 1024 * 1024;

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** True when `bytes` start with the PNG signature. */
export function isPng(bytes: Uint8Array): boolean {
  return bytes.length >= 8 && SIGNATURE.equals(Buffer.from(bytes.buffer, bytes.byteOffset, 8));
}

/** tEXt is Latin-1, but common readers (exifr among them) decode it as UTF-8: only ASCII goes there, the rest as iTXt. */
function isAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0x7f) return false;
  return true;
}

function chunk(type: string, data: Buffer): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  data.copy(out, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

function textChunk({ keyword, text }: PngTextEntry): Buffer {
  if (!/^[\x20-\x7e]{1,79}$/.test(keyword) || keyword !== keyword.trim() || keyword.includes('  ')) {
    throw new RangeError(`PNG text keyword must be 1–79 printable characters, got '${keyword}'`);
  }
  if (isAscii(text)) {
    return chunk('tEXt', Buffer.concat([Buffer.from(`${keyword}\0`, 'latin1'), Buffer.from(text, 'latin1')]));
  }
  // iTXt: keyword, 0, compression flag 0, method 0, empty language tag, 0, empty translated keyword, 0, UTF-8.
  const head = Buffer.from(`${keyword}\0\0\0\0\0`, 'latin1');
  return chunk('iTXt', Buffer.concat([head, Buffer.from(text, 'utf8')]));
}

/** The PNG with `entries` as text chunks right after IHDR, where readers that stop at the pixels still see them. */
export function withPngText(png: Uint8Array, entries: readonly PngTextEntry[]): Buffer {
  const bytes = Buffer.from(png.buffer, png.byteOffset, png.byteLength);
  if (!isPng(bytes) || bytes.toString('latin1', 12, 16) !== 'IHDR') {
    throw new RangeError('withPngText: not a PNG file');
  }
  const afterHeader = 8 + 12 + bytes.readUInt32BE(8);
  return Buffer.concat([
    bytes.subarray(0, afterHeader),
    ...entries.map(textChunk),
    bytes.subarray(afterHeader),
  ]);
}

/** Cuts `data` at its first NUL: [before, after]; undefined when there is none. */
function splitAtNul(data: Buffer, from = 0): [Buffer, number] | undefined {
  const at = data.indexOf(0, from);
  return at < 0 ? undefined : [data.subarray(from, at), at + 1];
}

function decodeText(type: string, data: Buffer): PngTextEntry | undefined {
  const head = splitAtNul(data);
  if (!head) return undefined;
  const keyword = head[0].toString('latin1');
  const rest = head[1];
  if (type === 'tEXt') return { keyword, text: data.toString('latin1', rest) };
  if (type === 'zTXt') {
    if (data[rest] !== 0) return undefined;
    return {
      keyword,
      text: inflateSync(data.subarray(rest + 1), { maxOutputLength: MAX_TEXT_BYTES }).toString('latin1'),
    };
  }
  const compressed = data[rest] === 1;
  const language = splitAtNul(data, rest + 2);
  const translated = language && splitAtNul(data, language[1]);
  if (!translated) return undefined;
  const body = data.subarray(translated[1]);
  return {
    keyword,
    text: (compressed ? inflateSync(body, { maxOutputLength: MAX_TEXT_BYTES }) : body).toString('utf8'),
  };
}

/** Every tEXt, zTXt and iTXt entry of a PNG, in file order; chunks with a bad CRC or layout are skipped. */
export function readPngText(png: Uint8Array): PngTextEntry[] {
  const bytes = Buffer.from(png.buffer, png.byteOffset, png.byteLength);
  if (!isPng(bytes)) throw new RangeError('readPngText: not a PNG file');
  const entries: PngTextEntry[] = [];
  for (let at = 8; at + 12 <= bytes.length; ) {
    const length = bytes.readUInt32BE(at);
    const end = at + 12 + length;
    if (end > bytes.length) break;
    const type = bytes.toString('latin1', at + 4, at + 8);
    if (type === 'IEND') break;
    const data = bytes.subarray(at + 8, at + 8 + length);
    const intact = crc32(bytes.subarray(at + 4, at + 8 + length)) === bytes.readUInt32BE(at + 8 + length);
    if (intact && (type === 'tEXt' || type === 'zTXt' || type === 'iTXt')) {
      try {
        const entry = decodeText(type, data);
        if (entry) entries.push(entry);
      } catch {
        // A corrupt compressed chunk is skipped like a bad CRC.
      }
    }
    at = end;
  }
  return entries;
}
