// DPM-Solver++ 2M (Lu et al. 2022), as diffusers' DPMSolverMultistepScheduler with
// algorithm_type "dpmsolver++", solver_type "midpoint", solver_order 1 or 2, lower_order_final,
// final_sigmas_type "zero" or "sigma_min", and optional Karras sigmas. The solver works on the
// data prediction x0 = (x - sigma_t eps) / alpha_t and keeps the previous one for the 2nd order.

import {
  flag,
  int,
  num,
  optionalText,
  type Resolved,
  requireSupported,
  resolveConfig,
  text,
  trainingScheduleFields,
} from './config.ts';
import {
  checkRunNotOver,
  checkSameLength,
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

const dpmSolverFields = {
  ...trainingScheduleFields,
  solver_order: int(2),
  prediction_type: text('epsilon'),
  thresholding: flag(false),
  dynamic_thresholding_ratio: num(0.995),
  sample_max_value: num(1.0),
  algorithm_type: text('dpmsolver++'),
  solver_type: text('midpoint'),
  lower_order_final: flag(true),
  euler_at_final: flag(false),
  use_karras_sigmas: flag(false),
  use_lu_lambdas: flag(false),
  final_sigmas_type: text('zero'),
  lambda_min_clipped: num(Number.NEGATIVE_INFINITY),
  variance_type: optionalText(),
  timestep_spacing: text('linspace'),
  steps_offset: int(0),
  rescale_betas_zero_snr: flag(false),
};

/** The VP coefficients of a sigma, in float32: alpha_t = 1/sqrt(sigma^2 + 1), sigma_t = sigma alpha_t, lambda_t. */
function vpCoefficients(sigma: number): { alpha: number; sigma: number; lambda: number } {
  const alpha = f32(1 / f32(Math.sqrt(f32(f32(sigma * sigma) + 1))));
  const sigmaT = f32(sigma * alpha);
  return { alpha, sigma: sigmaT, lambda: f32(f32(Math.log(alpha)) - f32(Math.log(sigmaT))) };
}

export class DpmSolverMultistepScheduler implements Scheduler {
  readonly name: SamplerName;
  readonly diffusersClass = 'DPMSolverMultistepScheduler';
  readonly config: Resolved<typeof dpmSolverFields>;
  readonly alphasCumprod: Float32Array;
  readonly initNoiseSigma = 1;
  timesteps: number[] = [];
  sigmas: Float32Array;
  private readonly trainSigmas: Float32Array;
  private readonly lastTimestep: number;
  private stepIndex: number | null = null;
  private previousX0: Float64Array | null = null;
  private lowerOrderNums = 0;

  constructor(given: Record<string, unknown>, name: SamplerName = 'dpmpp_2m') {
    const config = resolveConfig(dpmSolverFields, given);
    this.config = config;
    this.name = name;
    const who = 'DPM++';
    requireSupported(
      config.algorithm_type === 'dpmsolver++',
      who,
      `algorithm_type '${config.algorithm_type}'`,
    );
    requireSupported(config.solver_type === 'midpoint', who, `solver_type '${config.solver_type}'`);
    requireSupported(
      config.solver_order === 1 || config.solver_order === 2,
      who,
      `solver_order ${config.solver_order}`,
    );
    requireSupported(
      config.prediction_type === 'epsilon',
      who,
      `prediction_type '${config.prediction_type}'`,
    );
    requireSupported(!config.thresholding, who, 'thresholding');
    requireSupported(!config.use_lu_lambdas, who, 'use_lu_lambdas');
    requireSupported(!config.rescale_betas_zero_snr, who, 'rescale_betas_zero_snr');
    const finalSigmas = config.final_sigmas_type;
    requireSupported(
      finalSigmas === 'zero' || finalSigmas === 'sigma_min',
      who,
      `final_sigmas_type '${finalSigmas}'`,
    );
    this.alphasCumprod = trainingSchedule(config, who).alphasCumprod;
    this.trainSigmas = trainingSigmas(this.alphasCumprod);
    this.sigmas = new Float32Array(0);
    // lambda_min_clipped drops the tail of timesteps whose log-SNR falls below it (none by default)
    const lambdas = Array.from(this.alphasCumprod, (a) => {
      return f32(f32(Math.log(f32(Math.sqrt(a)))) - f32(Math.log(f32(Math.sqrt(f32(1 - a))))));
    }).reverse();
    const clipped = lambdas.findIndex((l) => l >= config.lambda_min_clipped);
    this.lastTimestep = config.num_train_timesteps - (clipped < 0 ? lambdas.length : clipped);
  }

  setTimesteps(steps: number): void {
    const { num_train_timesteps: trainSteps, timestep_spacing: spacing, steps_offset } = this.config;
    if (!Number.isInteger(steps) || steps < 1) throw new RangeError(`DPM++ steps must be a positive integer`);
    const last = this.lastTimestep;
    let timesteps: number[];
    if (spacing === 'linspace') {
      timesteps = numpyLinspace(0, last - 1, steps + 1)
        .map(roundHalfEven)
        .reverse()
        .slice(0, -1);
    } else if (spacing === 'leading') {
      const ratio = Math.floor(last / (steps + 1));
      timesteps = Array.from({ length: steps }, (_, i) => (steps - i) * ratio + steps_offset);
    } else if (spacing === 'trailing') {
      timesteps = numpyArange(last, 0, -trainSteps / steps).map((t) => roundHalfEven(t) - 1);
    } else {
      throw new RangeError(`timestep_spacing '${spacing}' is not one of linspace, leading, trailing`);
    }
    let sigmas: number[];
    if (this.config.use_karras_sigmas) {
      sigmas = karrasSigmas(this.trainSigmas[0], this.trainSigmas[this.trainSigmas.length - 1], steps);
      const table = logSigmas(this.trainSigmas);
      timesteps = sigmas.map((s) => roundHalfEven(sigmaToT(s, table)));
    } else {
      sigmas = timesteps.map((t) => interpAtIndex(t, this.trainSigmas));
    }
    const a0 = this.alphasCumprod[0];
    const sigmaLast = this.config.final_sigmas_type === 'zero' ? 0 : f32(Math.sqrt(f32(f32(1 - a0) / a0)));
    this.sigmas = Float32Array.from([...sigmas, sigmaLast]);
    this.timesteps = timesteps;
    this.reset();
  }

  scaleModelInput(x: Float32Array, _t: number): Float32Array {
    return x;
  }

  inputScale(_t: number): number {
    return 1;
  }

  step(eps: Float32Array, t: number, x: Float32Array, _noise?: NoiseSource): Float32Array {
    if (this.timesteps.length === 0) throw new Error('DPM++: call setTimesteps before step');
    checkSameLength('DPM++', x, eps, 'the model output');
    if (this.stepIndex === null) {
      // diffusers falls back to the last step for a timestep outside the schedule
      this.stepIndex = indexForTimestep(this.timesteps, t) ?? this.timesteps.length - 1;
    }
    const k = this.stepIndex;
    checkRunNotOver('DPM++', k, this.timesteps.length);
    const n = this.timesteps.length;
    const { solver_order: order, euler_at_final, lower_order_final, final_sigmas_type } = this.config;
    const lowerOrderFinal =
      k === n - 1 && (euler_at_final || (lower_order_final && n < 15) || final_sigmas_type === 'zero');

    const s0 = vpCoefficients(this.sigmas[k]);
    const x0 = new Float64Array(x.length);
    for (let i = 0; i < x.length; i++) x0[i] = (x[i] - s0.sigma * eps[i]) / s0.alpha;

    const target = vpCoefficients(this.sigmas[k + 1]);
    const h = f32(target.lambda - s0.lambda);
    const sampleCoeff = f32(target.sigma / s0.sigma);
    const x0Coeff = f32(target.alpha * f32(f32(Math.exp(-h)) - 1));
    const out = new Float32Array(x.length);
    const previous = this.previousX0;
    if (order === 1 || this.lowerOrderNums < 1 || lowerOrderFinal || previous === null) {
      for (let i = 0; i < x.length; i++) out[i] = sampleCoeff * x[i] - x0Coeff * x0[i];
    } else {
      // midpoint 2M: D1 extrapolates x0 linearly in lambda from the previous step's x0
      const s1 = vpCoefficients(this.sigmas[k - 1]);
      const r0 = f32(f32(s0.lambda - s1.lambda) / h);
      const inverseR0 = f32(1 / r0);
      const halfCoeff = f32(0.5 * x0Coeff);
      for (let i = 0; i < x.length; i++) {
        const d1 = inverseR0 * (x0[i] - previous[i]);
        out[i] = sampleCoeff * x[i] - x0Coeff * x0[i] - halfCoeff * d1;
      }
    }
    this.previousX0 = x0;
    if (this.lowerOrderNums < order) this.lowerOrderNums++;
    this.stepIndex = k + 1;
    return out;
  }

  reset(): void {
    this.stepIndex = null;
    this.previousX0 = null;
    this.lowerOrderNums = 0;
  }
}
