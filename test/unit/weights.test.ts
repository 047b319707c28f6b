// The safetensors reader: dtypes and conversions, metadata, lazy weights, and refusal of
// damaged or hostile files (each message names the file and the defect).

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, truncateSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { bytesOf, float16BitsToFloat32 } from '../../engine/graph/dtype.ts';
import {
  encodeSafetensors,
  MAX_HEADER_BYTES,
  SafetensorsFile,
  type TensorToWrite,
  WeightsError,
} from '../../engine/weights/safetensors.ts';

const dir = mkdtempSync(join(tmpdir(), 'clora-weights-'));
after(() => rmSync(dir, { recursive: true, force: true }));

let counter = 0;
function writeFile(bytes: Uint8Array, name = `t${counter++}.safetensors`): string {
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return path;
}

/** A header written by hand (with data bytes after it), for files no correct writer makes. */
function rawFile(header: unknown, dataBytes: number): string {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + dataBytes);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  return writeFile(out);
}

function expectDefect(path: string, pattern: RegExp): void {
  assert.throws(
    () => SafetensorsFile.open(path),
    (err: unknown) => {
      assert.ok(err instanceof WeightsError, `expected WeightsError, got ${err}`);
      assert.ok(err.message.includes(path), `message names the file: ${err.message}`);
      assert.match(err.defect, pattern);
      return true;
    },
  );
}

const f32 = (values: number[]) => bytesOf(Float32Array.from(values));
const u16 = (values: number[]) => bytesOf(Uint16Array.from(values));

const sample: TensorToWrite[] = [
  { name: 'w.f32', dtype: 'F32', shape: [2, 3], data: f32([1, -2, 0.5, 3.25, -0, 1e-30]) },
  // half bits: 1.0, -2.0, 65504 (max), 2^-24 (smallest subnormal)
  { name: 'w.f16', dtype: 'F16', shape: [4], data: u16([0x3c00, 0xc000, 0x7bff, 0x0001]) },
  // bfloat16 bits: 1.0, -3.5, 1.0e30 rounded (0x7149 → 9.95e29)
  { name: 'w.bf16', dtype: 'BF16', shape: [3], data: u16([0x3f80, 0xc060, 0x7149]) },
  { name: 'w.f64', dtype: 'F64', shape: [2], data: bytesOf(Float64Array.from([0.1, -7])) },
  { name: 'ids', dtype: 'I64', shape: [3], data: bytesOf(BigInt64Array.from([1n, -2n, 77n])) },
  { name: 'scalar', dtype: 'F32', shape: [], data: f32([4]) },
  { name: 'empty', dtype: 'F32', shape: [0, 5], data: new Uint8Array(0) },
  // E4M3FN: 1.0, 448 (max), NaN, 2^-9; E5M2: 1.0, inf, 2^-16, -2
  { name: 'f8a', dtype: 'F8_E4M3', shape: [4], data: Uint8Array.from([0x38, 0x7e, 0x7f, 0x01]) },
  { name: 'f8b', dtype: 'F8_E5M2', shape: [4], data: Uint8Array.from([0x3c, 0x7c, 0x01, 0xc0]) },
];

describe('SafetensorsFile', () => {
  const path = writeFile(encodeSafetensors(sample, { format: 'pt', ss_network_dim: '4' }));

  it('lists tensors with dtype, shape and size, and the metadata', () => {
    const file = SafetensorsFile.open(path);
    assert.deepEqual(file.names().sort(), sample.map((t) => t.name).sort());
    assert.equal(file.has('w.f32'), true);
    assert.equal(file.has('nope'), false);
    assert.deepEqual(file.info('w.f32'), { dtype: 'F32', shape: [2, 3], byteLength: 24 });
    assert.deepEqual(file.info('ids'), { dtype: 'I64', shape: [3], byteLength: 24 });
    assert.deepEqual(file.info('scalar').shape, []);
    assert.deepEqual(file.metadata, { format: 'pt', ss_network_dim: '4' });
    file.close();
  });

  it('reads raw bytes exactly as written', () => {
    const file = SafetensorsFile.open(path);
    for (const t of sample) assert.deepEqual(file.readRaw(t.name), t.data, t.name);
    assert.deepEqual([...new BigInt64Array(file.readRaw('ids').buffer)], [1n, -2n, 77n]);
    file.close();
  });

  it('converts F16, BF16, F64 and F8 values to float32', () => {
    const file = SafetensorsFile.open(path);
    assert.deepEqual(
      [...file.float32('w.f32')],
      [...new Float32Array(f32([1, -2, 0.5, 3.25, -0, 1e-30]).buffer)],
    );
    assert.deepEqual([...file.float32('w.f16')], [1, -2, 65504, 2 ** -24]);
    assert.deepEqual(
      [...file.float32('w.bf16')],
      [1, -3.5, new Float32Array(new Uint32Array([0x71490000]).buffer)[0]],
    );
    assert.deepEqual([...file.float32('w.f64')], [Math.fround(0.1), -7]);
    assert.deepEqual([...file.float32('scalar')], [4]);
    assert.equal(file.float32('empty').length, 0);
    const a = [...file.float32('f8a')];
    assert.deepEqual([a[0], a[1], a[3]], [1, 448, 2 ** -9]);
    assert.ok(Number.isNaN(a[2]));
    assert.deepEqual([...file.float32('f8b')], [1, Number.POSITIVE_INFINITY, 2 ** -16, -2]);
    file.close();
  });

  it('refuses to read integer tensors as floats, naming the tensor', () => {
    const file = SafetensorsFile.open(path);
    assert.throws(() => file.float32('ids'), /'ids' holds I64 integers/);
    assert.throws(() => file.weightData('ids', 'float32'), /I64 integers/);
    assert.throws(() => file.info('missing'), /has no tensor 'missing'/);
    file.close();
  });

  it('makes lazy weights in float32 or float16 with a fingerprint of file, tensor, range and dtype', () => {
    const file = SafetensorsFile.open(path);
    const a = file.weightData('w.f32', 'float32');
    assert.equal(a.byteLength, 24);
    assert.deepEqual(a.read(), sample[0].data);
    assert.ok(
      a.fingerprint.includes(path) &&
        a.fingerprint.includes('w.f32') &&
        a.fingerprint.includes('F32>float32'),
    );

    const half = file.weightData('w.f32', 'float16');
    assert.equal(half.byteLength, 12);
    const bits = new Uint16Array(half.read().slice().buffer);
    assert.deepEqual([...bits].slice(0, 4).map(float16BitsToFloat32), [1, -2, 0.5, 3.25]);
    assert.notEqual(half.fingerprint, a.fingerprint);

    // stored half as float16 is the stored bytes; BF16 converts
    assert.deepEqual(file.weightData('w.f16', 'float16').read(), sample[1].data);
    const bf = new Uint16Array(file.weightData('w.bf16', 'float16').read().slice().buffer);
    assert.deepEqual([...bf].slice(0, 2).map(float16BitsToFloat32), [1, -3.5]);
    assert.deepEqual(new Float32Array(file.weightData('w.f16', 'float32').read().slice().buffer)[2], 65504);
    file.close();
  });

  it('applies a transform when read, and tags the fingerprint with it', () => {
    const file = SafetensorsFile.open(path);
    const plain = file.weightData('w.f32', 'float32');
    const doubled = file.weightData('w.f32', 'float32', { tag: 'x2', apply: (v) => v.map((x) => 2 * x) });
    assert.notEqual(doubled.fingerprint, plain.fingerprint);
    assert.ok(doubled.fingerprint.endsWith('x2'));
    assert.deepEqual([...new Float32Array(doubled.read().slice().buffer)].slice(0, 4), [2, -4, 1, 6.5]);
    const shrink = file.weightData('w.f32', 'float32', { tag: 'bad', apply: (v) => v.slice(1) });
    assert.throws(() => shrink.read(), /turned 6 values of 'w.f32' into 5/);
    file.close();
  });

  it('reopens after close, and notices when the file changed on disk', () => {
    const copy = writeFile(encodeSafetensors(sample));
    const file = SafetensorsFile.open(copy);
    const w = file.weightData('w.f32', 'float32');
    file.close();
    assert.deepEqual(w.read(), sample[0].data);
    file.close();
    writeFileSync(
      copy,
      encodeSafetensors([{ ...sample[0], data: f32([9, 9, 9, 9, 9, 9]) }, ...sample.slice(1)]),
    );
    utimesSync(copy, new Date(), new Date(Date.now() + 5000));
    assert.throws(() => w.read(), /changed on disk since it was opened/);
  });

  it('keeps different files and ranges apart in fingerprints', () => {
    const one = SafetensorsFile.open(writeFile(encodeSafetensors(sample)));
    const two = SafetensorsFile.open(writeFile(encodeSafetensors(sample)));
    assert.notEqual(
      one.weightData('w.f32', 'float32').fingerprint,
      two.weightData('w.f32', 'float32').fingerprint,
    );
    assert.notEqual(
      one.weightData('w.f32', 'float32').fingerprint,
      one.weightData('scalar', 'float32').fingerprint,
    );
    one.close();
    two.close();
  });

  it('reads string metadata, and files whose only tensors hold zero bytes', () => {
    const zero = { dtype: 'F32', shape: [0, 4], data_offsets: [0, 0] };
    const file = SafetensorsFile.open(rawFile({ __metadata__: { a: 'x' }, z: zero, y: zero }, 0));
    assert.deepEqual(file.metadata, { a: 'x' });
    assert.deepEqual(file.names().sort(), ['y', 'z']);
    file.close();
  });

  it('takes a zero-size tensor at the boundary between two others, in any header order', () => {
    const path = rawFile(
      {
        b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] },
        z: { dtype: 'F16', shape: [0], data_offsets: [4, 4] },
        a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] },
        end: { dtype: 'U8', shape: [0, 3], data_offsets: [8, 8] },
      },
      8,
    );
    const file = SafetensorsFile.open(path);
    assert.deepEqual(file.info('z'), { dtype: 'F16', shape: [0], byteLength: 0 });
    file.close();
  });
});

describe('SafetensorsFile refuses damaged files', () => {
  const good = encodeSafetensors(sample.slice(0, 3));
  const tensor = (dtype: string, shape: unknown, offsets: unknown) => ({
    dtype,
    shape,
    data_offsets: offsets,
  });

  it('a truncated file (tensor past the end)', () => {
    const path = writeFile(good);
    truncateSync(path, good.length - 3);
    expectDefect(path, /lies outside the file.*truncated or corrupt/);
  });

  it('a file cut inside its header', () => {
    const path = writeFile(good.slice(0, 40));
    expectDefect(path, /is truncated: its header needs/);
  });

  it('a file shorter than the length prefix', () => {
    expectDefect(writeFile(Uint8Array.from([1, 2, 3])), /too short/);
  });

  it('a header pointing outside the file', () => {
    expectDefect(rawFile({ a: tensor('F32', [4], [0, 16]) }, 8), /tensor 'a' lies outside the file/);
  });

  it('overlapping tensors', () => {
    const path = rawFile({ a: tensor('F32', [4], [0, 16]), b: tensor('F32', [2], [8, 16]) }, 16);
    expectDefect(path, /tensors 'a' \(bytes 0–16\) and 'b' \(bytes 8–16\) overlap/);
  });

  // The reference implementation (huggingface/safetensors) refuses each of these; so must we.
  it('bytes after the last tensor (a polyglot file)', () => {
    const path = rawFile({ a: tensor('F32', [2], [0, 8]) }, 8 + 5);
    expectDefect(path, /has 5 bytes after its last tensor/);
    expectDefect(rawFile({}, 1), /has 1 byte after its last tensor/);
  });

  it('a gap before the first tensor or between two', () => {
    expectDefect(
      rawFile({ a: tensor('F32', [1], [4, 8]) }, 8),
      /has 4 bytes that belong to no tensor before tensor 'a' \(bytes 4–8\)/,
    );
    expectDefect(
      rawFile({ a: tensor('F32', [1], [0, 4]), b: tensor('F32', [1], [6, 10]) }, 10),
      /has 2 bytes that belong to no tensor before tensor 'b'/,
    );
  });

  it('a zero-size tensor whose offsets fall inside another tensor', () => {
    const path = rawFile({ a: tensor('F32', [4], [0, 16]), z: tensor('F32', [0], [8, 8]) }, 16);
    expectDefect(path, /tensors 'a' \(bytes 0–16\) and 'z' \(bytes 8–8\) overlap/);
  });

  it('metadata values that are not text', () => {
    expectDefect(rawFile({ __metadata__: { a: 'x', n: 3 } }, 0), /__metadata__ 'n' holding a number \(3\)/);
    expectDefect(rawFile({ __metadata__: { o: { k: 1 } } }, 0), /__metadata__ 'o' holding an object/);
    expectDefect(rawFile({ __metadata__: { l: ['x'] } }, 0), /__metadata__ 'l' holding a list/);
  });

  it('an unknown dtype', () => {
    expectDefect(rawFile({ a: tensor('F12', [1], [0, 2]) }, 2), /tensor 'a' has unknown dtype "F12"/);
  });

  it('a byte range that does not match dtype × shape', () => {
    expectDefect(rawFile({ a: tensor('F16', [3], [0, 8]) }, 8), /F16 \[3\], which needs 6 bytes.*give 8/);
  });

  it('malformed shapes and offsets', () => {
    expectDefect(rawFile({ a: tensor('F32', [1.5], [0, 4]) }, 4), /shape that is not a list of sizes/);
    expectDefect(rawFile({ a: tensor('F32', [1], [4]) }, 4), /data_offsets that are not two byte positions/);
    expectDefect(
      rawFile({ a: tensor('F32', [1], [-4, 0]) }, 4),
      /data_offsets that are not two byte positions/,
    );
    expectDefect(rawFile({ a: tensor('F32', [0], [4, 0]) }, 4), /run backwards/);
    expectDefect(rawFile({ a: 5 }, 0), /not an object/);
  });

  it('a header that is not JSON, or not an object', () => {
    const bytes = new Uint8Array(8 + 5);
    new DataView(bytes.buffer).setBigUint64(0, 5n, true);
    bytes.set(new TextEncoder().encode('{nope'), 8);
    expectDefect(writeFile(bytes), /not valid UTF-8 JSON/);
    expectDefect(rawFile([1, 2], 0), /not a JSON object/);
    expectDefect(rawFile({ __metadata__: 'x' }, 0), /__metadata__ entry that is not an object/);
  });

  it("a header length over the reference's limit of 100,000,000 bytes, printed exactly", () => {
    assert.equal(MAX_HEADER_BYTES, 100_000_000);
    const bytes = new Uint8Array(64);
    new DataView(bytes.buffer).setBigUint64(0, BigInt(MAX_HEADER_BYTES + 1), true);
    expectDefect(
      writeFile(bytes),
      /header of 100,000,001 bytes \(95 MiB\), over the format's limit of 100,000,000 bytes/,
    );
    new DataView(bytes.buffer).setBigUint64(0, 2n ** 64n - 1n, true);
    expectDefect(writeFile(bytes), /header of 18,446,744,073,709,551,615 bytes \(16 EiB\)/);
  });

  it('a header of 0 or 1 bytes, each said as it is', () => {
    const prefixed = (n: number, body: string) => {
      const bytes = new Uint8Array(8 + body.length);
      new DataView(bytes.buffer).setBigUint64(0, BigInt(n), true);
      bytes.set(new TextEncoder().encode(body), 8);
      return writeFile(bytes);
    };
    expectDefect(prefixed(0, ''), /declares an empty header \(0 bytes\)/);
    expectDefect(prefixed(1, '{'), /declares a 1-byte header, too short/);
  });

  it('a pickled PyTorch file renamed to .safetensors', () => {
    expectDefect(
      writeFile(Uint8Array.from([0x50, 0x4b, 3, 4, 0, 0, 0, 0, 0])),
      /PyTorch \(zip\/pickle\).*safetensors/,
    );
    expectDefect(writeFile(Uint8Array.from([0x80, 2, 0x7d, 0x71, 0, 0, 0, 0, 0])), /pickle file/);
  });

  it('a missing file', () => {
    expectDefect(join(dir, 'absent.safetensors'), /no such file/);
  });
});
