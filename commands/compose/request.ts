// The normalised result of a /compose command: what the queue carries and the engine runs,
// with the limits and defaults it is read with. The sampler and method names are the engine's.

import { SD15_SIDE_LATTICE } from '../../engine/architecture.ts';
import { defaultImageSize, type Method } from '../../engine/clora/spec.ts';
import { SAMPLERS as ENGINE_SAMPLERS, type SamplerName } from '../../engine/schedulers/index.ts';

/** A half-open range [start, end) of UTF-16 code units in a string. */
export interface TextSpan {
  start: number;
  end: number;
}

/** One subject of the prompt bound to one LoRA: branch i of CLoRA. */
export interface LoraBinding {
  /** The subject's word(s) as they appear in the prompt, e.g. "cat" or "red panda". */
  subject: string;
  /** The LoRA's name in the catalog. */
  lora: string;
  /** Multiplier on the LoRA's alpha/rank scale, 0–2. */
  weight: number;
  /** Where the subject sits in `ComposeRequest.prompt`; the engine maps it to token positions. */
  span: TextSpan;
}

/** A style LoRA applied to every branch, the base branch included. */
export interface StyleBinding {
  lora: string;
  weight: number;
}

export const SAMPLERS: readonly Sampler[] = ENGINE_SAMPLERS;
export type Sampler = SamplerName;

// Keyed by the engine's methods, so one it gains and this list lacks fails to compile.
const METHODS: Readonly<Record<Method, true>> = { clora: true, merge: true, composite: true, none: true };
/** clora: the method; merge: LoRAs summed into the weights; composite: per-step noise averaging; none: base model only. */
export const COMPOSITION_METHODS: readonly CompositionMethod[] = Object.keys(METHODS) as Method[];
export type CompositionMethod = Method;

export interface ComposeRequest {
  /** The natural-language prompt P0, e.g. "a cat and a penguin in a house". */
  prompt: string;
  /** In prompt order; subjects and LoRAs are unique (case-insensitively). */
  bindings: LoraBinding[];
  style: StyleBinding | null;
  negativePrompt: string;
  /** null: the queue draws one; a finished job always records the seed it ran with. */
  seed: number | null;
  steps: number;
  /** null: the model's own size, which the worker running the job fills in (and reports). */
  width: number | null;
  height: number | null;
  cfg: number;
  sampler: Sampler;
  method: CompositionMethod;
  /** Send the attention-mask thumbnails with the image. */
  masks: boolean;
}

/** Ranges a request must respect; an operator may tighten them for a small GPU. */
export interface ComposeLimits {
  /** Subject LoRAs plus the style LoRA. */
  maxLoras: number;
  minWeight: number;
  maxWeight: number;
  minSteps: number;
  maxSteps: number;
  minCfg: number;
  maxCfg: number;
  minSide: number;
  maxSide: number;
  /** The engine's side lattice (VAE scale factor × UNet downsampling: 64 for SD 1.x); sides are multiples of it. */
  sideMultiple: number;
  maxSeed: number;
  maxPromptLength: number;
  maxNegativeLength: number;
}

export const DEFAULT_COMPOSE_LIMITS: Readonly<ComposeLimits> = Object.freeze({
  maxLoras: 8,
  minWeight: 0,
  maxWeight: 2,
  minSteps: 1,
  maxSteps: 150,
  minCfg: 1,
  maxCfg: 30,
  minSide: 256,
  maxSide: 1024,
  sideMultiple: SD15_SIDE_LATTICE,
  maxSeed: 2 ** 32 - 1,
  maxPromptLength: 1000,
  maxNegativeLength: 1000,
});

/**
 * What an option left out means: the request's own settings (a null side: the model's own size,
 * unet sample_size × VAE scale factor, known where the model runs).
 */
export type ComposeDefaults = Pick<
  ComposeRequest,
  'steps' | 'width' | 'height' | 'cfg' | 'sampler' | 'method' | 'masks' | 'negativePrompt'
>;

export const DEFAULT_COMPOSE_DEFAULTS: Readonly<ComposeDefaults> = Object.freeze({
  steps: 50,
  width: null,
  height: null,
  cfg: 7.5,
  sampler: 'ddim',
  method: 'clora',
  masks: false,
  negativePrompt: '',
});

/** How a request samples when it names nothing; callers outside chat (tests, benches) start from it too. */
export type Sampling = Pick<ComposeDefaults, 'steps' | 'cfg' | 'sampler' | 'method'>;

const { steps, cfg, sampler, method } = DEFAULT_COMPOSE_DEFAULTS;
export const DEFAULT_SAMPLING: Readonly<Sampling> = Object.freeze({ steps, cfg, sampler, method });

export interface ComposeSettings {
  limits: ComposeLimits;
  defaults: ComposeDefaults;
}

export const DEFAULT_COMPOSE_SETTINGS: Readonly<ComposeSettings> = Object.freeze({
  limits: DEFAULT_COMPOSE_LIMITS,
  defaults: DEFAULT_COMPOSE_DEFAULTS,
});

/** Settings from an operator's partial overrides. */
export function composeSettings(
  overrides: { limits?: Partial<ComposeLimits>; defaults?: Partial<ComposeDefaults> } = {},
): ComposeSettings {
  return {
    limits: { ...DEFAULT_COMPOSE_LIMITS, ...overrides.limits },
    defaults: { ...DEFAULT_COMPOSE_DEFAULTS, ...overrides.defaults },
  };
}

/** The limits an operator sets (MAX_LORAS, MAX_STEPS, MAX_SIZE). */
export interface OperatorLimits {
  maxLoras: number;
  maxSteps: number;
  /** the largest image side; rounded down to the side lattice here, the one place it is */
  maxSize: number;
}

/**
 * The settings every front end reads requests with, from the operator's limits and the model's
 * own side (`nativeSize`, where this process can read the model; without it a request carries
 * no size and the worker fills in its model's).
 */
export function composeSettingsOf(limits: OperatorLimits, nativeSize?: number): ComposeSettings {
  const { sideMultiple } = DEFAULT_COMPOSE_LIMITS;
  const maxSide = Math.max(sideMultiple, Math.floor(limits.maxSize / sideMultiple) * sideMultiple);
  // A MAX_SIZE under the usual smallest side narrows the range rather than emptying it.
  const minSide = Math.min(DEFAULT_COMPOSE_LIMITS.minSide, maxSide);
  const side =
    nativeSize === undefined
      ? null
      : defaultImageSize(nativeSize, { minSize: minSide, maxSize: maxSide }, sideMultiple);
  return composeSettings({
    limits: { maxLoras: limits.maxLoras, maxSteps: limits.maxSteps, maxSide, minSide },
    defaults: { width: side, height: side },
  });
}

/** The request with a concrete seed, drawn from `random` (0 ≤ r < 1) when it has none. */
export function withSeed(
  request: ComposeRequest,
  random: () => number = Math.random,
  limits: ComposeLimits = DEFAULT_COMPOSE_LIMITS,
): ComposeRequest {
  if (request.seed !== null) return request;
  return { ...request, seed: Math.floor(random() * (limits.maxSeed + 1)) };
}
