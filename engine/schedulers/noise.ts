// Seeded standard-normal noise that every worker reproduces bit for bit, on any machine and
// any JavaScript engine: Philox4x32-10 + Box–Muller, with the logarithm, sine and cosine
// evaluated by the fixed float64 polynomials below instead of Math.log/sin/cos (whose last bit
// differs between engines and V8 versions).
//
// Algorithm (all arithmetic IEEE-754 binary64 with round-to-nearest-even, no fused multiply-add):
//
//   Philox4x32-10 (Salmon et al., SC'11; Random123's philox4x32 with 10 rounds):
//     key (k0, k1), counter (c0, c1, c2, c3), all uint32. Ten rounds; before every round but
//     the first, k0 += 0x9E3779B9 and k1 += 0xBB67AE85 (mod 2^32). A round:
//       (hi0, lo0) = high and low 32 bits of 0xD2511F53 * c0
//       (hi1, lo1) = high and low 32 bits of 0xCD9E8D57 * c2
//       (c0, c1, c2, c3) = (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0)
//     The counter after ten rounds is the block's output (x0, x1, x2, x3).
//
//   gaussianNoise(seed, count, stream): seed and stream are unsigned 64-bit integers.
//     k0 = seed mod 2^32, k1 = floor(seed / 2^32). Block b (b = 0, 1, ...) uses the counter
//     (b mod 2^32, floor(b / 2^32), stream mod 2^32, floor(stream / 2^32)) and yields values 2b
//     and 2b + 1 (the last block's second value is dropped when count is odd):
//       u1 = ((x0 >>> 5) * 2^26 + (x1 >>> 6)) / 2^53,   u2 = ((x2 >>> 5) * 2^26 + (x3 >>> 6)) / 2^53
//       r = sqrt(-2 * ln(1 - u1))                       (1 - u1 is in (0, 1], so r is finite)
//       value 2b = float32(r * cos(2 pi u2)),  value 2b + 1 = float32(r * sin(2 pi u2))
//     float32(v) rounds to nearest even (Math.fround).
//
//   ln(y), y > 0:  write y = m * 2^e with m in [1, 2) (exact, from the exponent bits); if
//     m > sqrt(2) (the float64 1.4142135623730951) then m = m / 2, e = e + 1. f = (m - 1) / (m + 1),
//     s = f * f, p = L[11]; for k = 10 down to 0: p = p * s + L[k], where L[k] = 1 / (2k + 1);
//     ln(y) = e * LN2 + 2 * f * p, LN2 = 0.6931471805599453. Evaluate exactly in this order:
//     ((e * LN2) + ((2 * f) * p)).
//
//   cos(2 pi u), sin(2 pi u), u in [0, 1):  q = u * 8, k = floor(q), r = q - k (all exact);
//     x = (k odd ? 1 - r : r) * PI_4, PI_4 = 0.7853981633974483 (the float64 pi / 4); x2 = x * x;
//     sin x = x * SP, SP = S[9]; for n = 8 down to 0: SP = SP * x2 + S[n], S[n] = (-1)^n / (2n+1)!;
//     cos x = CP,     CP = C[9]; for n = 8 down to 0: CP = CP * x2 + C[n], C[n] = (-1)^n / (2n)!;
//     where m! is the float64 running product 1 * 2 * ... * m and the coefficient its quotient.
//     For even k: (ca, sa) = (cos x, sin x); for odd k: (ca, sa) = (sin x, cos x). With
//     j = floor(k / 2): j = 0 -> (ca, sa), 1 -> (-sa, ca), 2 -> (-ca, -sa), 3 -> (sa, -ca).
//
// Streams: stream 0 is the initial latent; stepNoiseStream(i) = i + 1 is the noise an ancestral
// sampler draws at model call i. Streams are independent Philox counters, so any worker can
// regenerate any step's noise without replaying the others.

import type { NoiseSource } from './scheduler.ts';

const PHILOX_M0 = 0xd2511f53;
const PHILOX_M1 = 0xcd9e8d57;
const PHILOX_W0 = 0x9e3779b9;
const PHILOX_W1 = 0xbb67ae85;
const TWO_POW_32 = 2 ** 32;

/** High 32 bits of the 64-bit product of two uint32 (the low half is Math.imul). */
function mulHi32(a: number, b: number): number {
  const al = a & 0xffff;
  const ah = a >>> 16;
  const bl = b & 0xffff;
  const bh = b >>> 16;
  const lh = al * bh;
  const hl = ah * bl;
  const carry = (((al * bl) >>> 16) + (lh & 0xffff) + (hl & 0xffff)) >>> 16;
  return (ah * bh + (lh >>> 16) + (hl >>> 16) + carry) >>> 0;
}

/** Philox4x32-10 of a counter under a key; four uint32 in, four out. */
export function philox4x32(
  counter: readonly [number, number, number, number],
  key: readonly [number, number],
): [number, number, number, number] {
  let [c0, c1, c2, c3] = counter;
  let [k0, k1] = key;
  for (let round = 0; round < 10; round++) {
    if (round > 0) {
      k0 = (k0 + PHILOX_W0) >>> 0;
      k1 = (k1 + PHILOX_W1) >>> 0;
    }
    const hi0 = mulHi32(PHILOX_M0, c0);
    const lo0 = Math.imul(PHILOX_M0, c0) >>> 0;
    const hi1 = mulHi32(PHILOX_M1, c2);
    const lo1 = Math.imul(PHILOX_M1, c2) >>> 0;
    [c0, c1, c2, c3] = [(hi1 ^ c1 ^ k0) >>> 0, lo1, (hi0 ^ c3 ^ k1) >>> 0, lo0];
  }
  return [c0, c1, c2, c3];
}

function coefficients(count: number, firstFactorial: number): number[] {
  const out: number[] = [];
  let factorial = 1;
  for (let m = 1; m <= firstFactorial; m++) factorial *= m;
  for (let n = 0; n < count; n++) {
    out.push((n % 2 === 0 ? 1 : -1) / factorial);
    const m = firstFactorial + 2 * n;
    factorial = factorial * (m + 1) * (m + 2);
  }
  return out;
}

const LOG_SERIES = Array.from({ length: 12 }, (_, k) => 1 / (2 * k + 1));
const SIN_SERIES = coefficients(10, 1);
const COS_SERIES = coefficients(10, 0);
const PI_4 = Math.PI / 4; // 0.7853981633974483, exactly the float64 nearest pi / 4
const bits = new DataView(new ArrayBuffer(8));

/** Natural logarithm of a positive normal float64 by the fixed polynomial in the header. */
export function portableLog(y: number): number {
  bits.setFloat64(0, y);
  const high = bits.getUint32(0);
  let e = ((high >>> 20) & 0x7ff) - 1023;
  bits.setUint32(0, (high & 0x800fffff) | 0x3ff00000);
  let m = bits.getFloat64(0);
  if (m > Math.SQRT2) {
    m /= 2;
    e += 1;
  }
  const f = (m - 1) / (m + 1);
  const s = f * f;
  let p = LOG_SERIES[11];
  for (let k = 10; k >= 0; k--) p = p * s + LOG_SERIES[k];
  return e * Math.LN2 + 2 * f * p;
}

/** [cos(2 pi u), sin(2 pi u)] for u in [0, 1) by the fixed polynomials in the header. */
export function portableCosSinTurn(u: number): [number, number] {
  const q = u * 8;
  const k = Math.floor(q);
  const r = q - k;
  const x = (k % 2 === 1 ? 1 - r : r) * PI_4;
  const x2 = x * x;
  let sp = SIN_SERIES[9];
  for (let n = 8; n >= 0; n--) sp = sp * x2 + SIN_SERIES[n];
  let cp = COS_SERIES[9];
  for (let n = 8; n >= 0; n--) cp = cp * x2 + COS_SERIES[n];
  const sinX = x * sp;
  const [ca, sa] = k % 2 === 1 ? [sinX, cp] : [cp, sinX];
  switch (k >> 1) {
    case 0:
      return [ca, sa];
    case 1:
      return [-sa, ca];
    case 2:
      return [-ca, -sa];
    default:
      return [sa, -ca];
  }
}

function splitUint64(value: number | bigint, what: string): [number, number] {
  if (typeof value === 'bigint') {
    if (value < 0n || value >= 1n << 64n) throw new RangeError(`${what} must be an unsigned 64-bit integer`);
    return [Number(value & 0xffffffffn), Number(value >> 32n)];
  }
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`${what} must be a non-negative integer up to 2^53 - 1 (or a bigint), got ${value}`);
  }
  return [value % TWO_POW_32, Math.floor(value / TWO_POW_32)];
}

/** `count` standard-normal float32 values for (seed, stream); see the header for the exact algorithm. */
export function gaussianNoise(
  seed: number | bigint,
  count: number,
  stream: number | bigint = 0,
): Float32Array {
  if (!Number.isSafeInteger(count) || count < 0) throw new RangeError(`count must be a non-negative integer`);
  const key = splitUint64(seed, 'seed');
  const [s0, s1] = splitUint64(stream, 'stream');
  const out = new Float32Array(count);
  for (let block = 0; 2 * block < count; block++) {
    const [x0, x1, x2, x3] = philox4x32([block % TWO_POW_32, Math.floor(block / TWO_POW_32), s0, s1], key);
    const u1 = ((x0 >>> 5) * 67108864 + (x1 >>> 6)) / 9007199254740992;
    const u2 = ((x2 >>> 5) * 67108864 + (x3 >>> 6)) / 9007199254740992;
    const radius = Math.sqrt(-2 * portableLog(1 - u1));
    const [cos, sin] = portableCosSinTurn(u2);
    out[2 * block] = radius * cos;
    if (2 * block + 1 < count) out[2 * block + 1] = radius * sin;
  }
  return out;
}

export const INITIAL_NOISE_STREAM = 0;

/** The stream of the noise drawn at model call `step` (0-based). */
export function stepNoiseStream(step: number): number {
  if (!Number.isSafeInteger(step) || step < 0) throw new RangeError(`step must be a non-negative integer`);
  return step + 1;
}

/** A NoiseSource for scheduler.step at model call `step`: `count` values from stream stepNoiseStream(step). */
export function stepNoise(seed: number | bigint, count: number, step: number): NoiseSource {
  return () => gaussianNoise(seed, count, stepNoiseStream(step));
}
