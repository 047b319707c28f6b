// Euler samplers over sigma = sqrt((1 - alphas_cumprod) / alphas_cumprod), the latent scaled by
// 1/sqrt(sigma^2 + 1) for the UNet: diffusers' EulerDiscreteScheduler (s_churn = 0, i.e. the
// deterministic Euler ODE step; optional Karras sigmas) and EulerAncestralDiscreteScheduler.

import {
  flag,
  int,
  optionalNum,
  type Resolved,
  requireSupported,
  resolveConfig,
  text,
  trainingScheduleFields,
} from './config.ts';
import {
  checkRunNotOver,
  checkSameLength,
  drawNoise,
  f32,
  indexForTimestep,
  interpAtIndex,
  karrasSigmas,
  logSigmas,
  numpyArange,
  numpyLinspace,
  roundHalfEven,
  sigmaToT,
  trainingSchedule,
  trainingSigmas,
} from './schedule.ts';
import type { NoiseSource, SamplerName, Scheduler } from './scheduler.ts';

const eulerFields = {
  ...trainingScheduleFields,
  prediction_type: text('epsilon'),
  interpolation_type: text('linear'),
  use_karras_sigmas: flag(false),
  sigma_min: optionalNum(),
  sigma_max: optionalNum(),
  timestep_spacing: text('linspace'),
  timestep_type: text('discrete'),
  steps_offset: int(0),
  rescale_betas_zero_snr: flag(false),
};

const eulerAncestralFields = {
  ...trainingScheduleFields,
  prediction_type: text('epsilon'),
  timestep_spacing: text('linspace'),
  steps_offset: int(0),
  rescale_betas_zero_snr: flag(false),
};

/** Euler's float32 timesteps for "linspace", "leading" (+ steps_offset) and "trailing", high to low. */
export function floatTimesteps(spacing: string, trainSteps: number, steps: number, offset: number): number[] {
  if (spacing === 'linspace')
    return numpyLinspace(0, trainSteps - 1, steps)
      .map(f32)
      .reverse();
  if (spacing === 'leading') {
    const ratio = Math.floor(trainSteps / steps);
    return Array.from({ length: steps }, (_, i) => f32((steps - 1 - i) * ratio + offset));
  }
  if (spacing === 'trailing') {
    return numpyArange(trainSteps, 0, -trainSteps / steps).map((t) => f32(f32(roundHalfEven(t)) - 1));
  }
  throw new RangeError(`timestep_spacing '${spacing}' is not one of linspace, leading, trailing`);
}

/** sigma_max for linspace/trailing spacing, else sqrt(sigma_max^2 + 1), in float32. */
function initNoiseSigmaFor(sigmas: Float32Array, spacing: string): number {
  const max = sigmas.reduce((m, s) => Math.max(m, s), 0);
  return spacing === 'linspace' || spacing === 'trailing' ? max : f32(Math.sqrt(f32(f32(max * max) + 1)));
}

function withFinalZero(sigmas: readonly number[]): Float32Array {
  const out = new Float32Array(sigmas.length + 1);
  out.set(sigmas);
  return out;
}

/** The step counter both Euler variants share: set from the first timestep seen, then one per step. */
class StepCounter {
  index: number | null = null;

  at(timesteps: readonly number[], t: number, who: string): number {
    if (this.index === null) {
      const found = indexForTimestep(timesteps, t);
      if (found === undefined) throw new RangeError(`${who}: timestep ${t} is not in this schedule`);
      this.index = found;
    }
    checkRunNotOver(who, this.index, timesteps.length);
    return this.index;
  }
}

/** The input divisor at noise level sigma: √(σ² + 1), in float32 as diffusers computes it. */
function inputDivisor(sigma: number): number {
  return f32(Math.sqrt(f32(f32(sigma * sigma) + 1)));
}

function scaleBySigma(x: Float32Array, sigma: number): Float32Array {
  const divisor = inputDivisor(sigma);
  return x.map((v) => v / divisor);
}

export class EulerDiscreteScheduler implements Scheduler {
  readonly name: SamplerName = 'euler';
  readonly diffusersClass = 'EulerDiscreteScheduler';
  readonly config: Resolved<typeof eulerFields>;
  readonly alphasCumprod: Float32Array;
  timesteps: number[] = [];
  sigmas: Float32Array;
  initNoiseSigma: number;
  private readonly trainSigmas: Float32Array;
  private readonly counter = new StepCounter();

  constructor(given: Record<string, unknown>) {
    const config = resolveConfig(eulerFields, given);
    this.config = config;
    requireSupported(
      config.prediction_type === 'epsilon',
      'Euler',
      `prediction_type '${config.prediction_type}'`,
    );
    requireSupported(
      config.interpolation_type === 'linear',
      'Euler',
      `interpolation_type '${config.interpolation_type}'`,
    );
    requireSupported(!config.rescale_betas_zero_snr, 'Euler', 'rescale_betas_zero_snr');
    this.alphasCumprod = trainingSchedule(config, 'Euler').alphasCumprod;
    this.trainSigmas = trainingSigmas(this.alphasCumprod);
    this.sigmas = withFinalZero(Array.from(this.trainSigmas).reverse());
    this.initNoiseSigma = initNoiseSigmaFor(this.sigmas, config.timestep_spacing);
  }

  setTimesteps(steps: number): void {
    const { num_train_timesteps: trainSteps, timestep_spacing, steps_offset } = this.config;
    if (!Number.isInteger(steps) || steps < 1) throw new RangeError(`Euler steps must be a positive integer`);
    let timesteps = floatTimesteps(timestep_spacing, trainSteps, steps, steps_offset);
    let sigmas = timesteps.map((t) => interpAtIndex(t, this.trainSigmas));
    if (this.config.use_karras_sigmas) {
      const sigmaMin = this.config.sigma_min ?? sigmas[sigmas.length - 1];
      const sigmaMax = this.config.sigma_max ?? sigmas[0];
      sigmas = karrasSigmas(sigmaMin, sigmaMax, steps);
      const table = logSigmas(this.trainSigmas);
      timesteps = sigmas.map((s) => f32(sigmaToT(s, table)));
    }
    this.timesteps = timesteps;
    this.sigmas = withFinalZero(sigmas);
    this.initNoiseSigma = initNoiseSigmaFor(this.sigmas, timestep_spacing);
    this.reset();
  }

  scaleModelInput(x: Float32Array, t: number): Float32Array {
    return scaleBySigma(x, this.sigmas[this.counter.at(this.timesteps, t, 'Euler')]);
  }

  inputScale(t: number): number {
    return 1 / inputDivisor(this.sigmas[this.counter.at(this.timesteps, t, 'Euler')]);
  }

  step(eps: Float32Array, t: number, x: Float32Array, _noise?: NoiseSource): Float32Array {
    checkSameLength('Euler', x, eps, 'the model output');
    const k = this.counter.at(this.timesteps, t, 'Euler');
    const sigma = this.sigmas[k]; // sigma_hat = sigma: s_churn = 0 adds no noise
    const dt = f32(this.sigmas[k + 1] - sigma);
    const out = new Float32Array(x.length);
    for (let i = 0; i < x.length; i++) {
      const x0 = x[i] - sigma * eps[i];
      const derivative = (x[i] - x0) / sigma;
      out[i] = x[i] + derivative * dt;
    }
    this.counter.index = k + 1;
    return out;
  }

  reset(): void {
    this.counter.index = null;
  }
}

export class EulerAncestralScheduler implements Scheduler {
  readonly name: SamplerName = 'euler_a';
  readonly diffusersClass = 'EulerAncestralDiscreteScheduler';
  readonly config: Resolved<typeof eulerAncestralFields>;
  readonly alphasCumprod: Float32Array;
  timesteps: number[] = [];
  sigmas: Float32Array;
  initNoiseSigma: number;
  private readonly trainSigmas: Float32Array;
  private readonly counter = new StepCounter();

  constructor(given: Record<string, unknown>) {
    const config = resolveConfig(eulerAncestralFields, given);
    this.config = config;
    const prediction = config.prediction_type;
    requireSupported(prediction === 'epsilon', 'Euler ancestral', `prediction_type '${prediction}'`);
    requireSupported(!config.rescale_betas_zero_snr, 'Euler ancestral', 'rescale_betas_zero_snr');
    this.alphasCumprod = trainingSchedule(config, 'Euler ancestral').alphasCumprod;
    this.trainSigmas = trainingSigmas(this.alphasCumprod);
    this.sigmas = withFinalZero(Array.from(this.trainSigmas).reverse());
    this.initNoiseSigma = initNoiseSigmaFor(this.sigmas, config.timestep_spacing);
  }

  setTimesteps(steps: number): void {
    const { num_train_timesteps: trainSteps, timestep_spacing, steps_offset } = this.config;
    if (!Number.isInteger(steps) || steps < 1)
      throw new RangeError(`Euler ancestral steps must be a positive integer`);
    this.timesteps = floatTimesteps(timestep_spacing, trainSteps, steps, steps_offset);
    this.sigmas = withFinalZero(this.timesteps.map((t) => interpAtIndex(t, this.trainSigmas)));
    this.initNoiseSigma = initNoiseSigmaFor(this.sigmas, timestep_spacing);
    this.reset();
  }

  scaleModelInput(x: Float32Array, t: number): Float32Array {
    return scaleBySigma(x, this.sigmas[this.counter.at(this.timesteps, t, 'Euler ancestral')]);
  }

  inputScale(t: number): number {
    return 1 / inputDivisor(this.sigmas[this.counter.at(this.timesteps, t, 'Euler ancestral')]);
  }

  step(eps: Float32Array, t: number, x: Float32Array, noise?: NoiseSource): Float32Array {
    checkSameLength('Euler ancestral', x, eps, 'the model output');
    const k = this.counter.at(this.timesteps, t, 'Euler ancestral');
    const from = this.sigmas[k];
    const to = this.sigmas[k + 1];
    // Split the move to sigma_to into a deterministic part (down) and fresh noise (up): up^2 + down^2 = to^2.
    const fromSq = f32(from * from);
    const toSq = f32(to * to);
    const up = f32(Math.sqrt(f32(f32(toSq * f32(fromSq - toSq)) / fromSq)));
    const down = f32(Math.sqrt(f32(toSq - f32(up * up))));
    const dt = f32(down - from);
    const z = up > 0 ? drawNoise('Euler ancestral', x, noise) : null;
    const out = new Float32Array(x.length);
    for (let i = 0; i < x.length; i++) {
      const x0 = x[i] - from * eps[i];
      const derivative = (x[i] - x0) / from;
      const prev = x[i] + derivative * dt;
      out[i] = z === null ? prev : prev + z[i] * up;
    }
    this.counter.index = k + 1;
    return out;
  }

  reset(): void {
    this.counter.index = null;
  }
}
