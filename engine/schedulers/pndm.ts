// PLMS (Liu et al. 2022), as diffusers' PNDMScheduler with skip_prk_steps = true, SD 1.5's default:
// a linear multistep method on eps (orders 1..4 as history builds up). Its first model call's
// update is provisional: the second call repeats the second timestep, averages the two eps and
// redoes the first step from the original sample, so n steps take n + 1 model calls.

import {
  flag,
  int,
  type Resolved,
  requireSupported,
  resolveConfig,
  text,
  trainingScheduleFields,
} from './config.ts';
import { integerTimesteps } from './ddim.ts';
import {
  checkRunNotOver,
  checkSameLength,
  checkTrainingTimestep,
  f32,
  trainingSchedule,
} from './schedule.ts';
import type { NoiseSource, SamplerName, Scheduler } from './scheduler.ts';

const pndmFields = {
  ...trainingScheduleFields,
  skip_prk_steps: flag(false),
  set_alpha_to_one: flag(false),
  prediction_type: text('epsilon'),
  timestep_spacing: text('leading'),
  steps_offset: int(0),
};

export class PndmScheduler implements Scheduler {
  readonly name: SamplerName = 'pndm';
  readonly diffusersClass = 'PNDMScheduler';
  readonly config: Resolved<typeof pndmFields>;
  readonly alphasCumprod: Float32Array;
  readonly sigmas = null;
  readonly initNoiseSigma = 1;
  timesteps: number[] = [];
  private readonly finalAlphaCumprod: number;
  private steps = 0;
  private counter = 0;
  /** Past eps, oldest first (at most 4 kept). */
  private history: Float32Array[] = [];
  private firstSample: Float32Array | null = null;

  constructor(given: Record<string, unknown>) {
    const config = resolveConfig(pndmFields, given);
    this.config = config;
    const who = 'PNDM';
    requireSupported(
      config.skip_prk_steps,
      who,
      "the Runge-Kutta warm-up (set skip_prk_steps: true, SD 1.5's setting)",
    );
    requireSupported(
      config.prediction_type === 'epsilon',
      who,
      `prediction_type '${config.prediction_type}'`,
    );
    this.alphasCumprod = trainingSchedule(config, who).alphasCumprod;
    this.finalAlphaCumprod = config.set_alpha_to_one ? 1 : this.alphasCumprod[0];
  }

  setTimesteps(steps: number): void {
    const { num_train_timesteps: trainSteps, timestep_spacing, steps_offset } = this.config;
    if (!Number.isInteger(steps) || steps < 1 || steps > trainSteps) {
      throw new RangeError(`PNDM steps must be an integer in 1..${trainSteps}, got ${steps}`);
    }
    const descending = integerTimesteps(timestep_spacing, trainSteps, steps, steps_offset);
    this.timesteps = steps === 1 ? descending : [descending[0], descending[1], ...descending.slice(1)];
    this.steps = steps;
    this.reset();
  }

  scaleModelInput(x: Float32Array, _t: number): Float32Array {
    return x;
  }

  inputScale(_t: number): number {
    return 1;
  }

  step(eps: Float32Array, t: number, x: Float32Array, _noise?: NoiseSource): Float32Array {
    if (this.steps === 0) throw new Error('PNDM: call setTimesteps before step');
    checkRunNotOver('PNDM', this.counter, this.timesteps.length);
    checkSameLength('PNDM', x, eps, 'the model output');
    const stride = Math.floor(this.config.num_train_timesteps / this.steps);
    let from = t;
    let to = t - stride;
    let sample = x;
    let combined: (i: number) => number;
    if (this.counter === 1) {
      // the repeated timestep: redo the first step with the mean of both eps
      const first = this.history[0];
      const start = this.firstSample ?? x;
      from = t + stride;
      to = t;
      sample = start;
      this.firstSample = null;
      combined = (i) => (eps[i] + first[i]) / 2;
    } else {
      this.history = [...this.history.slice(-3), eps.slice()];
      const [e1, e2, e3, e4] = [...this.history].reverse();
      if (this.history.length === 1) {
        this.firstSample = x.slice();
        combined = (i) => e1[i];
      } else if (this.history.length === 2) {
        combined = (i) => (3 * e1[i] - e2[i]) / 2;
      } else if (this.history.length === 3) {
        combined = (i) => (23 * e1[i] - 16 * e2[i] + 5 * e3[i]) / 12;
      } else {
        combined = (i) => (1 / 24) * (55 * e1[i] - 59 * e2[i] + 37 * e3[i] - 9 * e4[i]);
      }
    }
    checkTrainingTimestep('PNDM', from, this.alphasCumprod.length);
    this.counter++;
    return this.previousSample(sample, from, to, combined);
  }

  /** The DDIM-like transfer x_from -> x_to for a given eps (PNDM paper, eq. 9). */
  private previousSample(
    x: Float32Array,
    from: number,
    to: number,
    eps: (i: number) => number,
  ): Float32Array {
    const alphaT = this.alphasCumprod[from];
    const alphaPrev = to >= 0 ? this.alphasCumprod[to] : this.finalAlphaCumprod;
    const betaT = f32(1 - alphaT);
    const betaPrev = f32(1 - alphaPrev);
    const sampleCoeff = f32(Math.sqrt(f32(alphaPrev / alphaT)));
    const denominator = f32(
      f32(alphaT * f32(Math.sqrt(betaPrev))) + f32(Math.sqrt(f32(f32(alphaT * betaT) * alphaPrev))),
    );
    const epsCoeff = f32(alphaPrev - alphaT);
    const out = new Float32Array(x.length);
    for (let i = 0; i < x.length; i++) out[i] = sampleCoeff * x[i] - (epsCoeff * eps(i)) / denominator;
    return out;
  }

  reset(): void {
    this.counter = 0;
    this.history = [];
    this.firstSample = null;
  }
}
