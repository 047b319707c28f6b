// The training noise schedule (betas, alphas_cumprod, sigmas) and the small numpy/torch
// primitives the diffusers schedulers build their inference schedules from, reproduced so the
// float32 tables come out bit for bit as diffusers 0.27 on torch 1.13 (CPU) computes them.

import { unsupported } from './config.ts';
import type { NoiseSource } from './scheduler.ts';

/** Rounds to float32: diffusers keeps its tables and scalar coefficients as float32 tensors. */
export const f32 = Math.fround;

const scratch = new DataView(new ArrayBuffer(8));

function f32Bits(x: number): number {
  scratch.setFloat32(0, x);
  return scratch.getUint32(0);
}

function f32FromBits(bits: number): number {
  scratch.setUint32(0, bits >>> 0);
  return scratch.getFloat32(0);
}

/** float32 fused multiply-add a*b+c rounded once (a, b, c float32), as a C++ compiler contracts it. */
export function fmaF32(a: number, b: number, c: number): number {
  const product = a * b; // exact: 24 + 24 significant bits fit a float64
  const sum = product + c;
  // TwoSum: the float64 addition's rounding error, so the float32 rounding sees the exact value
  const bVirtual = sum - product;
  const error = product - (sum - bVirtual) + (c - bVirtual);
  const rounded = f32(sum);
  if (error === 0 || rounded === sum) return rounded;
  // Only a float64 sum exactly halfway between two float32 values can round the wrong way twice.
  const towardSum = sum > rounded ? 1 : -1;
  const bits = f32Bits(rounded);
  const awayFromZero = rounded > 0 === towardSum > 0;
  const neighbour = rounded === 0 ? towardSum * 2 ** -149 : f32FromBits(awayFromZero ? bits + 1 : bits - 1);
  if (sum - rounded !== neighbour - sum) return rounded;
  return error > 0 === towardSum > 0 ? neighbour : rounded;
}

/**
 * torch.linspace(start, end, steps, dtype=float32) on CPU (ATen's linspace kernel with AVX2):
 * step = (end - start) / (steps - 1) in float32; element i = start + step*i for i < steps/2 and
 * end - step*(steps-1-i) above, each a fused multiply-add; the vectorised loop fills blocks of 8
 * whose base is computed that way at the block's first index and adds k*step (k < 8) to it.
 */
export function torchLinspaceF32(start: number, end: number, steps: number): Float32Array {
  const out = new Float32Array(steps);
  if (steps === 1) {
    out[0] = start;
    return out;
  }
  const s = f32(start);
  const e = f32(end);
  const step = f32(f32(e - s) / (steps - 1));
  const halfway = Math.floor(steps / 2);
  const scalarAt = (i: number): number =>
    i < halfway ? fmaF32(step, i, s) : fmaF32(-step, steps - 1 - i, e);
  const lanes = 8;
  const vectorised = Math.floor(steps / (2 * lanes)) * 2 * lanes;
  for (let base = 0; base < vectorised; base += lanes) {
    const first = scalarAt(base);
    for (let k = 0; k < lanes; k++) out[base + k] = fmaF32(k, step, first);
  }
  for (let i = vectorised; i < steps; i++) out[i] = scalarAt(i);
  return out;
}

export interface BetaScheduleConfig {
  num_train_timesteps: number;
  beta_start: number;
  beta_end: number;
  beta_schedule: string;
  trained_betas: number[] | null;
}

export interface TrainingSchedule {
  readonly betas: Float32Array;
  /** cumprod(1 - betas): torch accumulates in float64 and stores each prefix as float32. */
  readonly alphasCumprod: Float32Array;
}

export function trainingSchedule(config: BetaScheduleConfig, scheduler = 'scheduler'): TrainingSchedule {
  const n = config.num_train_timesteps;
  let betas: Float32Array;
  if (config.trained_betas !== null) {
    betas = Float32Array.from(config.trained_betas);
  } else if (config.beta_schedule === 'linear') {
    betas = torchLinspaceF32(config.beta_start, config.beta_end, n);
  } else if (config.beta_schedule === 'scaled_linear') {
    const roots = torchLinspaceF32(Math.sqrt(config.beta_start), Math.sqrt(config.beta_end), n);
    betas = roots.map((r) => r * r);
  } else {
    return unsupported(scheduler, `beta_schedule '${config.beta_schedule}' (use linear or scaled_linear)`);
  }
  const alphasCumprod = new Float32Array(betas.length);
  let product = 1;
  for (let i = 0; i < betas.length; i++) {
    product *= f32(1 - betas[i]);
    alphasCumprod[i] = product;
  }
  return { betas, alphasCumprod };
}

/** sigma(t) = ((1 - alphas_cumprod) / alphas_cumprod) ** 0.5 as torch evaluates it in float32, index t. */
export function trainingSigmas(alphasCumprod: Float32Array): Float32Array {
  return alphasCumprod.map((a) => f32(Math.sqrt(f32(f32(1 - a) / a))));
}

/** numpy.linspace(start, stop, num) in float64: i*step + start, the last element exactly stop. */
export function numpyLinspace(start: number, stop: number, num: number): number[] {
  if (num === 1) return [start];
  const step = (stop - start) / (num - 1);
  const out = Array.from({ length: num }, (_, i) => i * step + start);
  out[num - 1] = stop;
  return out;
}

/** numpy.arange(start, stop, step) for float64: start + i*delta with delta = (start+step) - start. */
export function numpyArange(start: number, stop: number, step: number): number[] {
  const length = Math.max(0, Math.ceil((stop - start) / step));
  if (length === 0) return [];
  const second = start + step;
  const delta = second - start;
  return Array.from({ length }, (_, i) => (i === 0 ? start : i === 1 ? second : start + i * delta));
}

/** numpy.round: halves go to the even neighbour. */
export function roundHalfEven(x: number): number {
  const floor = Math.floor(x);
  const diff = x - floor;
  if (diff < 0.5) return floor;
  if (diff > 0.5) return floor + 1;
  return floor % 2 === 0 ? floor : floor + 1;
}

/** numpy.interp(x, arange(len(fp)), fp) in float64. */
export function interpAtIndex(x: number, fp: ArrayLike<number>): number {
  const last = fp.length - 1;
  if (x <= 0) return fp[0];
  if (x >= last) return fp[last];
  const j = Math.floor(x);
  if (j === x) return fp[j];
  const slope = fp[j + 1] - fp[j]; // xp spacing is 1
  return slope * (x - j) + fp[j];
}

/** Karras et al. (2022) sigmas, rho = 7, from sigma_max down to sigma_min (k-diffusion's get_sigmas_karras). */
export function karrasSigmas(sigmaMin: number, sigmaMax: number, steps: number): number[] {
  const rho = 7;
  const minInvRho = sigmaMin ** (1 / rho);
  const maxInvRho = sigmaMax ** (1 / rho);
  return numpyLinspace(0, 1, steps).map((ramp) => (maxInvRho + ramp * (minInvRho - maxInvRho)) ** rho);
}

/** float32 log of the training sigmas, the table diffusers' _sigma_to_t interpolates in. */
export function logSigmas(sigmas: Float32Array): Float32Array {
  return sigmas.map((s) => Math.log(s));
}

/**
 * diffusers' _sigma_to_t: the fractional training timestep whose log-sigma matches, linearly
 * interpolated between the last table entry at or below log(sigma) and the next one.
 */
export function sigmaToT(sigma: number, logTable: Float32Array): number {
  const logSigma = Math.log(Math.max(sigma, 1e-10));
  let low = 0;
  for (let i = 0; i < logTable.length; i++) if (logSigma - logTable[i] >= 0) low = i;
  low = Math.min(low, logTable.length - 2);
  const lo = logTable[low];
  const hi = logTable[low + 1];
  const w = Math.min(Math.max((lo - logSigma) / (lo - hi), 0), 1);
  return (1 - w) * low + w * (low + 1);
}

/** The first index of t in timesteps, or the second when t repeats (diffusers' index_for_timestep). */
export function indexForTimestep(timesteps: readonly number[], t: number): number | undefined {
  const first = timesteps.indexOf(t);
  if (first < 0) return undefined;
  const second = timesteps.indexOf(t, first + 1);
  return second < 0 ? first : second;
}

export function checkSameLength(
  scheduler: string,
  x: ArrayLike<number>,
  other: ArrayLike<number>,
  what: string,
) {
  if (x.length !== other.length) {
    throw new RangeError(`${scheduler}: ${what} has ${other.length} values, the latent has ${x.length}`);
  }
}

export function checkTrainingTimestep(scheduler: string, t: number, trainSteps: number) {
  if (!Number.isInteger(t) || t < 0 || t >= trainSteps) {
    throw new RangeError(`${scheduler}: timestep ${t} is not a training timestep (0..${trainSteps - 1})`);
  }
}

export function drawNoise(who: string, x: Float32Array, noise: NoiseSource | undefined): Float32Array {
  if (noise === undefined) throw new Error(`${who} draws noise in step: pass a noise source`);
  const z = noise();
  checkSameLength(who, x, z, 'the noise');
  return z;
}

export function checkRunNotOver(scheduler: string, index: number, calls: number) {
  if (index >= calls)
    throw new Error(`${scheduler}: all ${calls} steps are done; call reset() to start a new run`);
}
