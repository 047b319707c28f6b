// The samplers a request can name, each one diffusers scheduler class configured from the model's
// scheduler_config.json (keys a class does not declare are ignored, missing ones take its defaults).

import { resolveConfig, SchedulerConfigError, trainingScheduleFields } from './config.ts';
import { DdimScheduler } from './ddim.ts';
import { DpmSolverMultistepScheduler } from './dpm-solver.ts';
import { EulerAncestralScheduler, EulerDiscreteScheduler } from './euler.ts';
import { PndmScheduler } from './pndm.ts';
import { trainingSchedule } from './schedule.ts';
import type { SamplerName, Scheduler } from './scheduler.ts';

export { SchedulerConfigError } from './config.ts';
export type { NoiseSource, ResolvedConfigValue, SamplerName, Scheduler } from './scheduler.ts';

export const SAMPLERS: readonly SamplerName[] = [
  'ddim',
  'euler',
  'euler_a',
  'dpmpp_2m',
  'dpmpp_2m_karras',
  'pndm',
];

export function isSamplerName(name: string): name is SamplerName {
  return (SAMPLERS as readonly string[]).includes(name);
}

export interface SchedulerOptions {
  /** DDIM's eta (0 = deterministic DDIM, 1 = DDPM-like); other samplers reject it. */
  eta?: number;
}

/**
 * Builds the sampler `name` from a diffusers scheduler config (e.g. SD 1.5's PNDM
 * scheduler_config.json). The name fixes the options that define it (Karras sigmas, solver order).
 */
export function createScheduler(
  name: SamplerName,
  config: Record<string, unknown>,
  options: SchedulerOptions = {},
): Scheduler {
  if (options.eta !== undefined && name !== 'ddim') {
    throw new SchedulerConfigError(`eta applies to the ddim sampler only, not '${name}'`);
  }
  switch (name) {
    case 'ddim':
      return new DdimScheduler(config, options.eta ?? 0);
    case 'euler':
      return new EulerDiscreteScheduler({ ...config, use_karras_sigmas: false });
    case 'euler_a':
      return new EulerAncestralScheduler(config);
    case 'dpmpp_2m':
    case 'dpmpp_2m_karras': {
      const karras = name === 'dpmpp_2m_karras';
      const dpmConfig = {
        ...config,
        algorithm_type: 'dpmsolver++',
        solver_order: 2,
        use_karras_sigmas: karras,
      };
      return new DpmSolverMultistepScheduler(dpmConfig, name);
    }
    case 'pndm':
      return new PndmScheduler(config);
    default:
      throw new SchedulerConfigError(
        `unknown sampler '${name as string}' (choose one of ${SAMPLERS.join(', ')})`,
      );
  }
}

/** The training schedule's alphas_cumprod (float32, as diffusers computes it) for a scheduler config. */
export function alphasCumprodFor(config: Record<string, unknown>): Float32Array {
  return trainingSchedule(resolveConfig(trainingScheduleFields, config)).alphasCumprod;
}

/**
 * The model-call indices in the first `fraction` of a run of `calls` calls: 0 .. round(fraction*calls) - 1
 * (e.g. CLoRA's latent updates on the first half of 10 DDIM steps: indices 0..4).
 */
export function stepIndicesForFraction(calls: number, fraction: number): number[] {
  if (!Number.isInteger(calls) || calls < 0)
    throw new RangeError(`calls must be a non-negative integer, got ${calls}`);
  if (!(fraction >= 0 && fraction <= 1)) throw new RangeError(`fraction must be in [0, 1], got ${fraction}`);
  return Array.from({ length: Math.round(fraction * calls) }, (_, i) => i);
}
