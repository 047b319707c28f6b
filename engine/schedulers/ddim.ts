// DDIM (Song et al. 2020), as diffusers' DDIMScheduler: epsilon prediction, optional clip_sample,
// eta = 0 (deterministic) or eta > 0 (adds sigma_t(eta) * noise, the noise drawn through step's callback).

import {
  flag,
  int,
  num,
  type Resolved,
  requireSupported,
  resolveConfig,
  text,
  trainingScheduleFields,
} from './config.ts';
import {
  checkSameLength,
  checkTrainingTimestep,
  drawNoise,
  f32,
  numpyArange,
  numpyLinspace,
  roundHalfEven,
  trainingSchedule,
} from './schedule.ts';
import type { NoiseSource, SamplerName, Scheduler } from './scheduler.ts';

const ddimFields = {
  ...trainingScheduleFields,
  clip_sample: flag(true),
  set_alpha_to_one: flag(true),
  steps_offset: int(0),
  prediction_type: text('epsilon'),
  thresholding: flag(false),
  dynamic_thresholding_ratio: num(0.995),
  clip_sample_range: num(1.0),
  sample_max_value: num(1.0),
  timestep_spacing: text('leading'),
  rescale_betas_zero_snr: flag(false),
};

/** Integer timesteps for "linspace", "leading" (+ steps_offset) and "trailing" spacing, high to low. */
export function integerTimesteps(
  spacing: string,
  trainSteps: number,
  steps: number,
  offset: number,
): number[] {
  if (spacing === 'linspace')
    return numpyLinspace(0, trainSteps - 1, steps)
      .map(roundHalfEven)
      .reverse();
  if (spacing === 'leading') {
    const ratio = Math.floor(trainSteps / steps);
    return Array.from({ length: steps }, (_, i) => (steps - 1 - i) * ratio + offset);
  }
  if (spacing === 'trailing')
    return numpyArange(trainSteps, 0, -trainSteps / steps).map((t) => roundHalfEven(t) - 1);
  throw new RangeError(`timestep_spacing '${spacing}' is not one of linspace, leading, trailing`);
}

export class DdimScheduler implements Scheduler {
  readonly name: SamplerName = 'ddim';
  readonly diffusersClass = 'DDIMScheduler';
  readonly config: Resolved<typeof ddimFields>;
  readonly alphasCumprod: Float32Array;
  readonly sigmas = null;
  readonly initNoiseSigma = 1;
  readonly eta: number;
  timesteps: number[] = [];
  private readonly finalAlphaCumprod: number;
  private steps = 0;

  constructor(given: Record<string, unknown>, eta = 0) {
    const config = resolveConfig(ddimFields, given);
    this.config = config;
    requireSupported(
      config.prediction_type === 'epsilon',
      'DDIM',
      `prediction_type '${config.prediction_type}'`,
    );
    requireSupported(!config.thresholding, 'DDIM', 'thresholding');
    requireSupported(!config.rescale_betas_zero_snr, 'DDIM', 'rescale_betas_zero_snr');
    if (!(eta >= 0)) throw new RangeError(`DDIM eta must be >= 0, got ${eta}`);
    this.eta = eta;
    this.alphasCumprod = trainingSchedule(config, 'DDIM').alphasCumprod;
    this.finalAlphaCumprod = config.set_alpha_to_one ? 1 : this.alphasCumprod[0];
  }

  setTimesteps(steps: number): void {
    const { num_train_timesteps: trainSteps, timestep_spacing, steps_offset } = this.config;
    if (!Number.isInteger(steps) || steps < 1 || steps > trainSteps) {
      throw new RangeError(`DDIM steps must be an integer in 1..${trainSteps}, got ${steps}`);
    }
    this.timesteps = integerTimesteps(timestep_spacing, trainSteps, steps, steps_offset);
    this.steps = steps;
  }

  scaleModelInput(x: Float32Array, _t: number): Float32Array {
    return x;
  }

  inputScale(_t: number): number {
    return 1;
  }

  step(eps: Float32Array, t: number, x: Float32Array, noise?: NoiseSource): Float32Array {
    if (this.steps === 0) throw new Error('DDIM: call setTimesteps before step');
    checkSameLength('DDIM', x, eps, 'the model output');
    checkTrainingTimestep('DDIM', t, this.alphasCumprod.length);
    const prevT = t - Math.floor(this.config.num_train_timesteps / this.steps);
    const alphaT = this.alphasCumprod[t];
    const alphaPrev = prevT >= 0 ? this.alphasCumprod[prevT] : this.finalAlphaCumprod;
    const betaT = f32(1 - alphaT);
    const sqrtBetaT = f32(Math.sqrt(betaT));
    const sqrtAlphaT = f32(Math.sqrt(alphaT));
    const sqrtAlphaPrev = f32(Math.sqrt(alphaPrev));
    // sigma_t(eta) = eta * sqrt((1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev)), DDIM eq. 16
    const variance = f32(f32(f32(1 - alphaPrev) / betaT) * f32(1 - f32(alphaT / alphaPrev)));
    const std = f32(this.eta * f32(Math.sqrt(variance)));
    const direction = f32(Math.sqrt(f32(f32(1 - alphaPrev) - f32(std * std))));
    const clip = this.config.clip_sample ? this.config.clip_sample_range : Number.POSITIVE_INFINITY;
    const z = this.eta > 0 ? drawNoise('DDIM with eta > 0', x, noise) : null;
    const out = new Float32Array(x.length);
    for (let i = 0; i < x.length; i++) {
      let x0 = (x[i] - sqrtBetaT * eps[i]) / sqrtAlphaT;
      if (x0 > clip) x0 = clip;
      else if (x0 < -clip) x0 = -clip;
      const prev = sqrtAlphaPrev * x0 + direction * eps[i];
      out[i] = z === null ? prev : prev + std * z[i];
    }
    return out;
  }

  reset(): void {}
}
