// Which Stable Diffusion family a set of weights belongs to, judged from key names and
// widths, so a wrong model is refused up front with a reason instead of failing deep inside.

import { WeightsError } from './safetensors.ts';

export type Family = 'SD 1.x' | 'SD 2.x' | 'SDXL' | 'SD 3' | 'Flux';

export const SD1_ONLY = 'clora-bot needs Stable Diffusion 1.x (SD 1.5 or a model fine-tuned from it)';

/** SD 1.5's scheduler_config.json (runwayml/stable-diffusion-v1-5), for single files that carry none. */
export const SD15_SCHEDULER_CONFIG: Readonly<Record<string, unknown>> = Object.freeze({
  _class_name: 'PNDMScheduler',
  beta_end: 0.012,
  beta_schedule: 'scaled_linear',
  beta_start: 0.00085,
  clip_sample: false,
  num_train_timesteps: 1000,
  prediction_type: 'epsilon',
  set_alpha_to_one: false,
  skip_prk_steps: true,
  steps_offset: 1,
  trained_betas: null,
});

/** The family whose UNet cross-attends to text embeddings of this width (SD 1.x: 768, or a test size). */
export function familyByContextWidth(width: number): Family {
  if (width === 2048) return 'SDXL';
  if (width === 1024) return 'SD 2.x';
  return 'SD 1.x';
}

/** The family whose text encoder has this hidden width (OpenCLIP ViT-H: 1024, bigG: 1280). */
export function familyByTextWidth(width: number): Family {
  if (width === 1280) return 'SDXL';
  if (width === 1024) return 'SD 2.x';
  return 'SD 1.x';
}

export function wrongFamily(source: string, family: Family, evidence: string): WeightsError {
  const article = family === 'Flux' ? 'a' : 'an';
  return new WeightsError(source, `this is ${article} ${family} checkpoint (${evidence}); ${SD1_ONLY}`);
}
