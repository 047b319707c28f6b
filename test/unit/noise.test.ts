// Seeded noise: Philox known answers, bit-exact agreement with an independent implementation of
// the documented algorithm, determinism, stream independence and the moments of N(0, 1).

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import {
  gaussianNoise,
  INITIAL_NOISE_STREAM,
  philox4x32,
  portableCosSinTurn,
  portableLog,
  stepNoise,
  stepNoiseStream,
} from '../../engine/schedulers/noise.ts';

function float32Hex(values: Float32Array): string[] {
  const view = new DataView(new ArrayBuffer(4));
  return Array.from(values, (v) => {
    view.setFloat32(0, v);
    return view.getUint32(0).toString(16).padStart(8, '0');
  });
}

function sha256LittleEndian(values: Float32Array): string {
  const bytes = new DataView(new ArrayBuffer(values.length * 4));
  for (let i = 0; i < values.length; i++) bytes.setFloat32(4 * i, values[i], true);
  return createHash('sha256').update(new Uint8Array(bytes.buffer)).digest('hex');
}

function mean(values: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += values[i];
  return sum / values.length;
}

function correlation(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const ma = mean(a);
  const mb = mean(b);
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += (a[i] - ma) * (b[i] - mb);
    aa += (a[i] - ma) ** 2;
    bb += (b[i] - mb) ** 2;
  }
  return ab / Math.sqrt(aa * bb);
}

describe('Philox4x32-10', () => {
  // Random123's kat_vectors: counter, key -> output
  const known: [[number, number, number, number], [number, number], number[]][] = [
    [
      [0, 0, 0, 0],
      [0, 0],
      [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8],
    ],
    [
      [0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff],
      [0xffffffff, 0xffffffff],
      [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd],
    ],
    [
      [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
      [0xa4093822, 0x299f31d0],
      [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1],
    ],
  ];
  for (const [counter, key, expected] of known) {
    test(`known answer for counter ${counter.map((c) => c.toString(16)).join(' ')}`, () => {
      assert.deepEqual(philox4x32(counter, key), expected);
    });
  }
});

describe('gaussianNoise', () => {
  // Produced by a separate Python transcription of noise.ts's header (frexp instead of exponent bits).
  test('matches an independent implementation of the documented algorithm bit for bit', () => {
    assert.deepEqual(float32Hex(gaussianNoise(0, 9)), [
      'bdb949ef',
      'bf80a829',
      'bf6c805c',
      'c020d43c',
      '3e006f6f',
      '3e1d2533',
      'bfb24a80',
      'bf89a29c',
      '400bac53',
    ]);
    assert.deepEqual(float32Hex(gaussianNoise(42, 8, 3)), [
      'bd461fac',
      'be90c476',
      'bf21f233',
      'bf84cf2a',
      'bf60ef1f',
      'bd3b8bda',
      '3f10401b',
      'bef4173b',
    ]);
    assert.deepEqual(float32Hex(gaussianNoise(2n ** 64n - 1n, 6, 2n ** 40n + 7n)), [
      'beefbd89',
      'be5f111e',
      '3f34c001',
      'bf3cb993',
      '3eef26bc',
      'bf8cb703',
    ]);
    assert.equal(
      sha256LittleEndian(gaussianNoise(7, 200001)),
      '1bbdd8d6353d668f2499dd3ee289e2be700f57993038334b98f5abacb16be664',
    );
    assert.equal(
      sha256LittleEndian(gaussianNoise(2n ** 63n + 5n, 65536, 123456789)),
      'c775198d8b06df4fc19a9ff6df0d43b0fa6d3a6899845613f82fc7f53fdc7baa',
    );
  });

  test('is deterministic, prefix-stable, and a number seed equals the same bigint seed', () => {
    const first = gaussianNoise(1234, 1001, 5);
    assert.deepEqual(gaussianNoise(1234, 1001, 5), first);
    assert.deepEqual(gaussianNoise(1234n, 1001, 5n), first);
    assert.deepEqual(gaussianNoise(1234, 10, 5), first.slice(0, 10));
    assert.deepEqual(gaussianNoise(1234, 7, 5), first.slice(0, 7));
    assert.equal(gaussianNoise(1234, 0).length, 0);
  });

  test('seeds and streams give unrelated sequences', () => {
    const n = 1 << 16;
    const bound = 5 / Math.sqrt(n);
    const base = gaussianNoise(99, n, 0);
    const others = [
      gaussianNoise(99, n, 1),
      gaussianNoise(99, n, 2 ** 32),
      gaussianNoise(100, n, 0),
      gaussianNoise(99 + 2 ** 32, n, 0),
    ];
    for (const other of others) {
      assert.notDeepEqual(other.slice(0, 8), base.slice(0, 8));
      assert.ok(Math.abs(correlation(base, other)) < bound, 'streams correlate');
    }
    // the cosine and sine halves of each Box-Muller pair are independent too
    const evens = base.filter((_, i) => i % 2 === 0);
    const odds = base.filter((_, i) => i % 2 === 1);
    assert.ok(Math.abs(correlation(evens, odds)) < 5 / Math.sqrt(n / 2));
    assert.ok(
      Math.abs(correlation(base.subarray(1), base.subarray(0, n - 1))) < bound,
      'lag-1 autocorrelation',
    );
  });

  test('has the moments and tails of a standard normal', () => {
    const n = 1 << 18;
    const z = gaussianNoise(2024, n, 0);
    const m = mean(z);
    const variance = mean(z.map((v) => (v - m) ** 2));
    const fourth = mean(z.map((v) => v ** 4));
    const within1 = z.filter((v) => Math.abs(v) < 1).length / n;
    const beyond3 = z.filter((v) => Math.abs(v) > 3).length / n;
    assert.ok(Math.abs(m) < 5 / Math.sqrt(n), `mean ${m}`);
    assert.ok(Math.abs(variance - 1) < 5 * Math.sqrt(2 / n), `variance ${variance}`);
    assert.ok(Math.abs(fourth - 3) < 5 * Math.sqrt(96 / n), `fourth moment ${fourth}`);
    const p1 = 0.6826894921370859;
    const p3 = 0.0026997960632601965;
    assert.ok(Math.abs(within1 - p1) < 5 * Math.sqrt((p1 * (1 - p1)) / n), `P(|z| < 1) = ${within1}`);
    assert.ok(Math.abs(beyond3 - p3) < 5 * Math.sqrt((p3 * (1 - p3)) / n), `P(|z| > 3) = ${beyond3}`);
  });

  test('portable log, cos and sin agree with Math to float64 accuracy', () => {
    const u = gaussianNoise(5, 20000).map((v) => Math.abs(v) / 8);
    for (const y of [
      2 ** -53,
      1e-300,
      0.5,
      Math.SQRT1_2,
      Math.SQRT2,
      Math.SQRT2 + 2 ** -52,
      1,
      1.5,
      2,
      1e10,
      ...u,
    ]) {
      if (y === 0) continue;
      const expected = Math.log(y);
      assert.ok(Math.abs(portableLog(y) - expected) <= 4e-16 * Math.max(1, Math.abs(expected)), `log ${y}`);
    }
    for (const turn of [
      0,
      0.125,
      0.25,
      0.375,
      0.5,
      0.625,
      0.75,
      0.875,
      1 - 2 ** -53,
      ...u.map((v) => v % 1),
    ]) {
      const [cos, sin] = portableCosSinTurn(turn);
      assert.ok(Math.abs(cos - Math.cos(2 * Math.PI * turn)) < 1e-15, `cos ${turn}`);
      assert.ok(Math.abs(sin - Math.sin(2 * Math.PI * turn)) < 1e-15, `sin ${turn}`);
    }
  });

  test('per-step noise comes from stream step + 1, after the initial latent stream 0', () => {
    assert.equal(INITIAL_NOISE_STREAM, 0);
    assert.equal(stepNoiseStream(0), 1);
    assert.deepEqual(stepNoise(8, 64, 4)(), gaussianNoise(8, 64, 5));
  });

  test('rejects seeds and streams that are not unsigned 64-bit integers', () => {
    assert.throws(() => gaussianNoise(-1, 4), RangeError);
    assert.throws(() => gaussianNoise(1.5, 4), RangeError);
    assert.throws(() => gaussianNoise(2 ** 53, 4), RangeError);
    assert.throws(() => gaussianNoise(2n ** 64n, 4), RangeError);
    assert.throws(() => gaussianNoise(1, 4, -1), RangeError);
    assert.throws(() => gaussianNoise(1, -4), RangeError);
  });
});
