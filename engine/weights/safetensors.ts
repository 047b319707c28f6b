// Reads .safetensors files: an 8-byte little-endian header length, a JSON header giving each
// tensor's dtype, shape and byte range, then raw little-endian data. open() reads and checks
// the header only; tensor bytes are read one range at a time, when asked for.

import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { extname, resolve } from 'node:path';
import { InputError } from '../errors.ts';
import { bytesOf, float16BitsToFloat32, float32ToFloat16Bits } from '../graph/dtype.ts';
import type { WeightData } from '../graph/graph.ts';

/** A weights file that cannot be used, with what is wrong and what to do about it. */
export class WeightsError extends InputError {
  override name = 'WeightsError';
  constructor(
    readonly file: string,
    readonly defect: string,
  ) {
    super(`${file}: ${defect}`);
  }
}

const DTYPE_BYTES = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  F8_E4M3: 1,
  F8_E5M2: 1,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U64: 8,
  U32: 4,
  U16: 2,
  U8: 1,
  BOOL: 1,
} as const;

export type SafetensorsDType = keyof typeof DTYPE_BYTES;

const FLOAT_DTYPES: ReadonlySet<string> = new Set(['F64', 'F32', 'F16', 'BF16', 'F8_E4M3', 'F8_E5M2']);

export function isSafetensorsDType(value: unknown): value is SafetensorsDType {
  return typeof value === 'string' && Object.hasOwn(DTYPE_BYTES, value);
}

export function isFloatDType(dtype: SafetensorsDType): boolean {
  return FLOAT_DTYPES.has(dtype);
}

/** The reference implementation's limit; real headers are a few hundred kB. */
export const MAX_HEADER_BYTES = 100_000_000;

export interface TensorInfo {
  dtype: SafetensorsDType;
  shape: number[];
  byteLength: number;
}

interface Entry extends TensorInfo {
  /** absolute file offset of the first byte */
  offset: number;
  /** data_offsets as written in the header, for fingerprints */
  range: [number, number];
}

/** A value-level rewrite applied when a weight is read (the tag goes into the fingerprint). */
export interface WeightTransform {
  readonly tag: string;
  apply(values: Float32Array): Float32Array;
}

const PICKLE_HINT =
  'convert it to .safetensors first (for example with diffusers’ or kohya’s conversion scripts); ' +
  'pickled files can run code when loaded, so they are never opened';

const PICKLE_EXTENSIONS = new Set(['.ckpt', '.pt', '.pth', '.bin', '.pkl', '.pickle']);

/** Why a path must not be opened because it names a pickled PyTorch file, or undefined. */
export function pickledFileProblem(path: string): string | undefined {
  const ext = extname(path).toLowerCase();
  if (!PICKLE_EXTENSIONS.has(ext)) return undefined;
  return `is a pickled PyTorch file (${ext}); ${PICKLE_HINT}`;
}

export class SafetensorsFile {
  private fd: number | null;

  private constructor(
    readonly path: string,
    readonly metadata: Record<string, string>,
    private readonly entries: Map<string, Entry>,
    private readonly size: number,
    private readonly mtimeMs: number,
    fd: number,
  ) {
    this.fd = fd;
  }

  /** Opens a file and validates its header; throws WeightsError naming the defect. */
  static open(path: string): SafetensorsFile {
    const abs = resolve(path);
    let fd: number;
    try {
      fd = openSync(abs, 'r');
    } catch (err) {
      throw new WeightsError(abs, fsProblem(err));
    }
    try {
      const stat = fstatSync(fd);
      if (!stat.isFile()) throw new WeightsError(abs, 'is not a regular file');
      const { metadata, entries } = parseHeader(abs, fd, stat.size);
      return new SafetensorsFile(abs, metadata, entries, stat.size, stat.mtimeMs, fd);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }

  names(): string[] {
    return [...this.entries.keys()];
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  info(name: string): TensorInfo {
    const { dtype, shape, byteLength } = this.entry(name);
    return { dtype, shape: [...shape], byteLength };
  }

  /** The tensor's bytes exactly as stored (little-endian). */
  readRaw(name: string): Uint8Array {
    const e = this.entry(name);
    const out = new Uint8Array(e.byteLength);
    const fd = this.handle();
    let done = 0;
    while (done < out.length) {
      const n = readSync(fd, out, done, out.length - done, e.offset + done);
      if (n === 0)
        throw new WeightsError(this.path, `file ended while reading tensor '${name}'; it changed on disk`);
      done += n;
    }
    return out;
  }

  /** The tensor as float32, converting F16, BF16, F64 and F8 values. */
  float32(name: string): Float32Array {
    const e = this.entry(name);
    if (!isFloatDType(e.dtype)) {
      throw new WeightsError(
        this.path,
        `tensor '${name}' holds ${e.dtype} integers, not floats; read it with readRaw`,
      );
    }
    return toFloat32(this.readRaw(name), e.dtype);
  }

  /** A lazy weight for the graph: nothing is read until the model is emitted. */
  weightData(name: string, dtype: 'float32' | 'float16', transform?: WeightTransform): WeightData {
    const e = this.entry(name);
    if (!isFloatDType(e.dtype)) {
      throw new WeightsError(
        this.path,
        `tensor '${name}' holds ${e.dtype} integers and cannot be a ${dtype} weight`,
      );
    }
    const count = elementCount(e.shape);
    const direct =
      !transform &&
      ((e.dtype === 'F32' && dtype === 'float32') || (e.dtype === 'F16' && dtype === 'float16'));
    const fingerprint = [
      'safetensors',
      this.path,
      this.size,
      this.mtimeMs,
      name,
      `${e.range[0]}-${e.range[1]}`,
      `${e.dtype}>${dtype}`,
      transform?.tag ?? '',
    ].join('|');
    return {
      byteLength: count * (dtype === 'float32' ? 4 : 2),
      fingerprint,
      read: () => {
        if (direct) return this.readRaw(name);
        let values = this.float32(name);
        if (transform) {
          values = transform.apply(values);
          if (values.length !== count) {
            throw new WeightsError(
              this.path,
              `transform '${transform.tag}' turned ${count} values of '${name}' into ${values.length}`,
            );
          }
        }
        return dtype === 'float32' ? bytesOf(values) : float16Bytes(values);
      },
    };
  }

  /** Releases the file handle; a later read opens the file again (and checks it is unchanged). */
  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }

  private entry(name: string): Entry {
    const e = this.entries.get(name);
    if (!e) throw new WeightsError(this.path, `has no tensor '${name}'`);
    return e;
  }

  private handle(): number {
    if (this.fd !== null) return this.fd;
    let fd: number;
    try {
      fd = openSync(this.path, 'r');
    } catch (err) {
      throw new WeightsError(this.path, fsProblem(err));
    }
    const stat = fstatSync(fd);
    if (stat.size !== this.size || stat.mtimeMs !== this.mtimeMs) {
      closeSync(fd);
      throw new WeightsError(this.path, 'changed on disk since it was opened; load it again');
    }
    this.fd = fd;
    return fd;
  }
}

function parseHeader(
  path: string,
  fd: number,
  size: number,
): { metadata: Record<string, string>; entries: Map<string, Entry> } {
  const fail = (defect: string): never => {
    throw new WeightsError(path, defect);
  };
  if (size < 8)
    fail(`is ${size} bytes long, too short for a safetensors file; it is truncated or not safetensors`);
  const head = new Uint8Array(8);
  readSync(fd, head, 0, 8, 0);
  if (head[0] === 0x50 && head[1] === 0x4b && head[2] === 0x03 && head[3] === 0x04) {
    fail(`is a PyTorch (zip/pickle) checkpoint, not safetensors; ${PICKLE_HINT}`);
  }
  if (head[0] === 0x80 && head[1] >= 2 && head[1] <= 5)
    fail(`is a pickle file, not safetensors; ${PICKLE_HINT}`);
  const declared = new DataView(head.buffer).getBigUint64(0, true);
  if (declared > BigInt(MAX_HEADER_BYTES)) {
    fail(
      `declares a header of ${byteCount(declared)}, over the format's limit of ${byteCount(MAX_HEADER_BYTES)}; ` +
        'it is not a safetensors file or is corrupt',
    );
  }
  const headerLength = Number(declared);
  if (headerLength === 0) fail('declares an empty header (0 bytes); the file is corrupt');
  if (headerLength === 1) {
    fail('declares a 1-byte header, too short for the JSON object a header is ({…}); the file is corrupt');
  }
  if (8 + headerLength > size) {
    fail(
      `is truncated: its header needs ${byteCount(8 + headerLength)} but the file has ${byteCount(size)}; download it again`,
    );
  }
  const headerBytes = new Uint8Array(headerLength);
  readSync(fd, headerBytes, 0, headerLength, 8);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(headerBytes));
  } catch {
    fail('has a header that is not valid UTF-8 JSON; the file is corrupt or not safetensors');
  }
  if (!isRecord(header))
    fail('has a header that is not a JSON object; the file is corrupt or not safetensors');
  const record = header as Record<string, unknown>;

  const metadata: Record<string, string> = {};
  const rawMeta = record.__metadata__;
  if (rawMeta !== undefined) {
    if (!isRecord(rawMeta)) fail('has a __metadata__ entry that is not an object of strings');
    // The format says string → string, and the reference refuses anything else.
    for (const [k, v] of Object.entries(rawMeta as Record<string, unknown>)) {
      if (typeof v !== 'string') {
        fail(
          `has __metadata__ '${k}' holding ${jsonKind(v)}, but metadata values must be text; ` +
            'the writer broke the format, so the file is refused',
        );
      }
      if (k !== '__proto__') metadata[k] = v as string;
    }
  }

  const dataStart = 8 + headerLength;
  const dataSize = size - dataStart;
  const entries = new Map<string, Entry>();
  for (const [name, value] of Object.entries(record)) {
    if (name === '__metadata__') continue;
    const where = `tensor '${name}'`;
    if (!isRecord(value)) fail(`${where} has a header entry that is not an object`);
    const { dtype, shape, data_offsets: offsets } = value as Record<string, unknown>;
    if (!isSafetensorsDType(dtype)) {
      fail(
        `${where} has unknown dtype ${JSON.stringify(dtype)} (known: ${Object.keys(DTYPE_BYTES).join(', ')})`,
      );
    }
    const dt = dtype as SafetensorsDType;
    if (!Array.isArray(shape) || !shape.every(isCount))
      fail(`${where} has a shape that is not a list of sizes`);
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount)) {
      fail(`${where} has data_offsets that are not two byte positions`);
    }
    const [begin, end] = offsets as [number, number];
    if (begin > end) fail(`${where} has data_offsets [${begin}, ${end}] that run backwards`);
    if (end > dataSize) {
      fail(
        `${where} lies outside the file (bytes ${begin}–${end} of a ${dataSize}-byte data section); ` +
          'the file is truncated or corrupt, download it again',
      );
    }
    const dims = shape as number[];
    const byteLength = elementCount(dims) * DTYPE_BYTES[dt];
    if (end - begin !== byteLength) {
      fail(
        `${where} is ${dt} [${dims.join(', ')}], which needs ${byteLength} bytes, ` +
          `but its data_offsets give ${end - begin}; the file is corrupt`,
      );
    }
    entries.set(name, { dtype: dt, shape: dims, byteLength, offset: dataStart + begin, range: [begin, end] });
  }

  checkCoverage(entries, dataSize, fail);
  return { metadata, entries };
}

/**
 * The reference's layout rule: sorted by offsets, tensors cover the data section exactly,
 * with no gap, no overlap and no byte after the last (a zero-size tensor sits between others).
 */
function checkCoverage(entries: Map<string, Entry>, dataSize: number, fail: (defect: string) => never): void {
  const ordered = [...entries].sort(
    ([an, a], [bn, b]) => a.range[0] - b.range[0] || a.range[1] - b.range[1] || (an < bn ? -1 : 1),
  );
  let covered = 0;
  let previous: [string, Entry] | undefined;
  for (const [name, e] of ordered) {
    const [begin, end] = e.range;
    if (begin < covered && previous) {
      const [prevName, prev] = previous;
      fail(
        `tensors '${prevName}' (bytes ${prev.range[0]}–${prev.range[1]}) and '${name}' (bytes ${begin}–${end}) ` +
          'overlap in the data section; the file is corrupt',
      );
    }
    if (begin > covered) {
      fail(
        `has ${byteCount(begin - covered)} that belong to no tensor before tensor '${name}' (bytes ${begin}–${end}); ` +
          'the data section must be covered exactly, so the file is corrupt or hides other content',
      );
    }
    covered = end;
    previous = [name, e];
  }
  if (covered < dataSize) {
    fail(
      `has ${byteCount(dataSize - covered)} after its last tensor; the data section must end with the last tensor, ` +
        'so the file is corrupt or hides other content',
    );
  }
}

/** "12,345 bytes", with the binary size beside large counts ("… bytes (16 EiB)"). */
export function byteCount(n: number | bigint): string {
  const exact = `${BigInt(n).toLocaleString('en-US')} ${n === 1 || n === 1n ? 'byte' : 'bytes'}`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];
  let size = Number(n);
  let unit = -1;
  while (size >= 1024 && unit < units.length - 1) {
    size /= 1024;
    unit++;
  }
  return unit < 1 ? exact : `${exact} (${size.toFixed(size < 10 ? 1 : 0)} ${units[unit]})`;
}

function jsonKind(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  return typeof value === 'object' ? 'an object' : `a ${typeof value} (${JSON.stringify(value)})`;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

export function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function fsProblem(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EACCES' || code === 'EPERM') return 'cannot be read (permission denied)';
  if (code === 'EISDIR') return 'is a folder, not a file';
  return `cannot be opened (${(err as Error).message})`;
}

let f16Table: Float32Array | undefined;

/** float32 values of all 65536 half-precision bit patterns, built on first use. */
function halfTable(): Float32Array {
  if (!f16Table) {
    f16Table = new Float32Array(65536);
    for (let i = 0; i < 65536; i++) f16Table[i] = float16BitsToFloat32(i);
  }
  return f16Table;
}

const f8Tables = new Map<string, Float32Array>();

/** float32 values of all 256 patterns of an 8-bit float (E4M3FN: no infinities; E5M2: IEEE-like). */
function f8Table(dtype: 'F8_E4M3' | 'F8_E5M2'): Float32Array {
  let table = f8Tables.get(dtype);
  if (table) return table;
  const [expBits, bias] = dtype === 'F8_E4M3' ? [4, 7] : [5, 15];
  const mantBits = 7 - expBits;
  table = new Float32Array(256);
  for (let b = 0; b < 256; b++) {
    const sign = b & 0x80 ? -1 : 1;
    const exp = (b >> mantBits) & ((1 << expBits) - 1);
    const mant = b & ((1 << mantBits) - 1);
    const maxExp = (1 << expBits) - 1;
    let v: number;
    if (exp === 0) v = mant * 2 ** (1 - bias - mantBits);
    else if (dtype === 'F8_E5M2' && exp === maxExp) v = mant ? Number.NaN : Number.POSITIVE_INFINITY;
    else if (dtype === 'F8_E4M3' && exp === maxExp && mant === (1 << mantBits) - 1) v = Number.NaN;
    else v = (1 + mant / (1 << mantBits)) * 2 ** (exp - bias);
    table[b] = sign * v;
  }
  f8Tables.set(dtype, table);
  return table;
}

/** Converts little-endian float bytes of any float dtype to float32 (raw must start at offset 0). */
export function toFloat32(raw: Uint8Array, dtype: SafetensorsDType): Float32Array {
  const n = raw.byteLength / DTYPE_BYTES[dtype];
  const aligned = raw.byteOffset % 8 === 0 ? raw : raw.slice();
  const buf = aligned.buffer;
  const at = aligned.byteOffset;
  switch (dtype) {
    case 'F32':
      return new Float32Array(buf, at, n);
    case 'F64':
      return Float32Array.from(new Float64Array(buf, at, n));
    case 'F16': {
      const bits = new Uint16Array(buf, at, n);
      const table = halfTable();
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = table[bits[i]];
      return out;
    }
    case 'BF16': {
      // bfloat16 is the top half of a float32
      const bits = new Uint16Array(buf, at, n);
      const out = new Uint32Array(n);
      for (let i = 0; i < n; i++) out[i] = bits[i] << 16;
      return new Float32Array(out.buffer);
    }
    case 'F8_E4M3':
    case 'F8_E5M2': {
      const table = f8Table(dtype);
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = table[aligned[i]];
      return out;
    }
    default:
      throw new TypeError(`${dtype} is not a float dtype`);
  }
}

/** float32 values as IEEE half-precision bytes (round to nearest even). */
export function float16Bytes(values: Float32Array): Uint8Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = float32ToFloat16Bits(values[i]);
  return bytesOf(out);
}

export interface TensorToWrite {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
  data: Uint8Array;
}

/** Serialises tensors as a safetensors file (header padded to 8 bytes, data in the given order). */
export function encodeSafetensors(
  tensors: readonly TensorToWrite[],
  metadata?: Record<string, string>,
): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  for (const t of tensors) {
    const need = elementCount(t.shape) * DTYPE_BYTES[t.dtype];
    if (t.data.byteLength !== need) {
      throw new TypeError(`tensor '${t.name}': ${t.data.byteLength} bytes given for ${t.dtype} [${t.shape}]`);
    }
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + need] };
    offset += need;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const headerBytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + headerBytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let at = 8 + headerBytes.length;
  for (const t of tensors) {
    out.set(t.data, at);
    at += t.data.byteLength;
  }
  return out;
}
