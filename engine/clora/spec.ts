// A composition request as the engine takes it, with the published CLoRA defaults scaled
// to the step count, and the checks that refuse what cannot run before any compute. The
// request's own settings, their defaults and their ranges are the caller's (for the bot:
// commands/compose/request.ts); the engine checks only what the model and the maths need.

import { nativeImageSize, SD15_SIDE_LATTICE, SD15_UNET, SD15_VAE } from '../architecture.ts';
import { InputError } from '../errors.ts';
import { isSamplerName, type SamplerName } from '../schedulers/index.ts';
import type { Morphology } from './masks.ts';

export type Method = 'clora' | 'merge' | 'composite' | 'none';

export interface LoraRef {
  /** the name users know it by */
  name: string;
  /** the .safetensors file */
  path: string;
}

export interface SubjectBinding {
  /** the subject's word(s) in the base text, e.g. "cat" or "red panda" */
  word: string;
  lora: LoraRef;
  /** multiplier on the LoRA's alpha/rank scale */
  weight: number;
  /** trigger words put before the subject in this LoRA's prompt (may be empty) */
  triggers: string[];
  /** which occurrence of the word in the prompt is the subject (0-based; default the first) */
  occurrence?: number;
}

export interface GuidanceOptions {
  /** latent step size α (published 20) */
  stepSize: number;
  /** updates happen at step indices < updateUntil (published: the first half) */
  updateUntil: number;
  /** step indices where the update is iterated (published 0, 10, 20 of 50) */
  iterativeSteps: number[];
  /** iterations at those steps (published 20) */
  iterations: number;
  /** end a burst early once the loss is below this (off by default) */
  lossThreshold?: number;
  /** NT-Xent temperature (published 0.5) */
  temperature: number;
  /** mask threshold as a fraction of each map's max (published 0.3) */
  maskThreshold: number;
  morphology: Morphology;
  /** masks apply from this step index on; before it branches are averaged */
  applyMaskAfter: number;
  /** ablations */
  update: boolean;
  mask: boolean;
  /** reproduce the published code: maps from both CFG halves, noise predicted before the update */
  published: boolean;
}

export interface CompositionSpec {
  /** the base prompt, with each subject's word in it: "a cat and a penguin in a house" */
  prompt: string;
  subjects: SubjectBinding[];
  style?: { lora: LoraRef; weight: number; triggers: string[] };
  negative: string;
  seed: number;
  steps: number;
  width: number;
  height: number;
  cfg: number;
  sampler: SamplerName;
  method: Method;
  guidance: GuidanceOptions;
  /** apply LoRAs' text-encoder parts (published notebook: on) */
  textEncoderLora: boolean;
}

/**
 * The request limits a host enforces (the operator's MAX_LORAS, MAX_STEPS, MAX_SIZE; their owner is
 * commands/compose/request.ts): a worker checks them again, since its job may come from another
 * host's bot. Without them the engine checks only what the model itself needs.
 */
export interface SpecLimits {
  maxLoras: number;
  maxSteps: number;
  /** the largest image side */
  maxSize: number;
}

/**
 * The model's own side on the side lattice, capped by the largest allowed side (where there is
 * one) and kept at least the smallest.
 */
export function defaultImageSize(
  native: number,
  range: { minSize: number; maxSize?: number },
  lattice = SD15_SIDE_LATTICE,
): number {
  const largest =
    range.maxSize === undefined ? Infinity : Math.max(lattice, Math.floor(range.maxSize / lattice) * lattice);
  const own = Math.max(lattice, Math.round(native / lattice) * lattice);
  return Math.max(Math.min(own, largest), Math.min(range.minSize, largest));
}

/** Published CLoRA guidance settings, scaled from their 50-step schedule to `steps`. */
export function defaultGuidance(steps: number): GuidanceOptions {
  const scale = (i: number) => Math.round((i * steps) / 50);
  const iterative = [...new Set([0, 10, 20].map(scale))].filter((i) => i < Math.round(steps / 2));
  return {
    stepSize: 20,
    updateUntil: Math.round(steps / 2),
    iterativeSteps: iterative,
    iterations: 20,
    temperature: 0.5,
    maskThreshold: 0.3,
    morphology: 'none',
    applyMaskAfter: 0,
    update: true,
    mask: true,
    published: false,
  };
}

/** What a caller states: the prompt, its subjects and the request's sampling settings. */
export type SpecInput = Omit<Partial<CompositionSpec>, 'guidance'> &
  Pick<CompositionSpec, 'prompt' | 'subjects' | 'steps' | 'cfg' | 'sampler' | 'method'> & {
    guidance?: Partial<GuidanceOptions>;
  };

/** SD 1.5's own image side (512); an engine states its model's (Engine.defaultSize). */
export const SD15_IMAGE_SIZE = nativeImageSize(SD15_UNET, SD15_VAE);

/**
 * The spec with what is the engine's to fill: a square of `size` (the model's own size, e.g.
 * Engine.defaultSize), the published guidance settings for the step count, the LoRAs' text-encoder
 * parts on, no negative prompt, seed 0.
 */
export function compositionSpec(input: SpecInput, size = SD15_IMAGE_SIZE): CompositionSpec {
  return {
    negative: '',
    seed: 0,
    textEncoderLora: true,
    ...input,
    width: input.width ?? size,
    height: input.height ?? size,
    guidance: { ...defaultGuidance(input.steps), ...input.guidance },
  };
}

export class SpecError extends InputError {
  override name = 'SpecError';
}

/**
 * Refuses what cannot run, with what to change; returns the spec unchanged otherwise. Sides must
 * sit on the model's `lattice`; `limits`, where the host sets them, bound LoRAs, steps and sides.
 */
export function validateSpec(
  spec: CompositionSpec,
  limits?: SpecLimits,
  lattice = SD15_SIDE_LATTICE,
): CompositionSpec {
  const fail = (message: string): never => {
    throw new SpecError(message);
  };
  if (!spec.prompt.trim())
    fail('the prompt is empty: describe the scene, e.g. "a cat and a penguin in a house"');
  const loras = spec.subjects.length + (spec.style ? 1 : 0);
  if (limits && loras > limits.maxLoras)
    fail(`${loras} LoRAs requested; at most ${limits.maxLoras} can be composed at once`);
  if (spec.method !== 'none' && spec.subjects.length === 0 && !spec.style) {
    fail('bind at least one subject to a LoRA, e.g. cat:<tabby>');
  }
  const words = new Set<string>();
  const paths = new Set<string>();
  for (const s of spec.subjects) {
    const key = s.word.trim().toLowerCase();
    if (!key) fail('a subject binding has no subject word');
    if (words.has(key)) fail(`the subject "${s.word}" is bound twice; bind each subject once`);
    words.add(key);
    if (paths.has(s.lora.path))
      fail(`the LoRA "${s.lora.name}" is bound to two subjects; use it for one subject`);
    paths.add(s.lora.path);
    if (!Number.isFinite(s.weight))
      fail(`the weight of "${s.lora.name}" is ${s.weight}; use a finite number`);
  }
  if (spec.style && !Number.isFinite(spec.style.weight)) {
    fail(`the style weight is ${spec.style.weight}; use a finite number`);
  }
  const maxSteps = limits?.maxSteps ?? Infinity;
  if (!Number.isInteger(spec.steps) || spec.steps < 1 || spec.steps > maxSteps) {
    fail(`steps must be a whole number ${limits ? `from 1 to ${maxSteps}` : '≥ 1'}, got ${spec.steps}`);
  }
  if (!Number.isFinite(spec.cfg)) fail(`the CFG scale must be a finite number, got ${spec.cfg}`);
  const maxSize = limits?.maxSize ?? Infinity;
  const sides = limits
    ? `a multiple of ${lattice} from ${lattice} to ${maxSize}`
    : `a positive multiple of ${lattice}`;
  for (const [side, v] of [
    ['width', spec.width],
    ['height', spec.height],
  ] as const) {
    if (!Number.isInteger(v) || v % lattice !== 0 || v < lattice || v > maxSize) {
      fail(`${side} ${v} is not supported: use ${sides} (e.g. 512x512 or 512x768)`);
    }
  }
  if (!Number.isInteger(spec.seed) || spec.seed < 0 || spec.seed > 2 ** 32 - 1) {
    fail(`the seed must be a whole number from 0 to 4294967295, got ${spec.seed}`);
  }
  if (!isSamplerName(spec.sampler)) fail(`unknown sampler "${spec.sampler}"`);
  const g = spec.guidance;
  if (!(g.stepSize >= 0)) fail(`the guidance step size must be ≥ 0, got ${g.stepSize}`);
  if (!(g.maskThreshold > 0 && g.maskThreshold < 1))
    fail(`the mask threshold must be between 0 and 1, got ${g.maskThreshold}`);
  if (!(g.temperature > 0)) fail(`the temperature must be > 0, got ${g.temperature}`);
  if (!Number.isInteger(g.iterations) || g.iterations < 1)
    fail(`iterations must be a whole number ≥ 1, got ${g.iterations}`);
  return spec;
}
