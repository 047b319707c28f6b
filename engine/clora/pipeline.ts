// The denoising loop of a composition (METHOD.md), in the steps diffusers' pipelines name:
// encode each branch's prompt with its own LoRAs; prepare the latent; then per step guide
// (at early steps move the latent down the contrastive loss's gradient), predict every
// branch's noise in one batched call, fuse it with the branches' masks and CFG, and step the
// scheduler; finally decode.

import * as ort from 'onnxruntime-node';
import { CancelledError } from '../errors.ts';
import * as G from '../graph/index.ts';
import { LoraSlots } from '../lora/gated.ts';
import type { CompiledNetwork } from '../models/compiled.ts';
import { createScheduler, type SamplerName, type Scheduler } from '../schedulers/index.ts';
import { gaussianNoise, INITIAL_NOISE_STREAM, stepNoise } from '../schedulers/noise.ts';
import { CLIP_CONTEXT_LENGTH } from '../tokenizer/index.ts';
import {
  concatRows,
  gateFeeds,
  type LoadLora,
  PromptEmbeddings,
  range,
  repeat,
  spans,
  timestepFeed,
} from './batch.ts';
import {
  chunkedGuidance,
  type Guidance,
  type GuidanceMode,
  guidanceMode,
  oneRunGuidance,
} from './guidance.ts';
import {
  type AttentionGrid,
  attentionGrid,
  branchMasks,
  fuseNoise,
  guide,
  mapsFromAggregate,
  resizeNearest,
} from './masks.ts';
import { type BatchPlan, planBatches, type UNetMemoryModel } from './memory.ts';
import type { CompositionPlan } from './plan.ts';
import type { GuidanceOptions } from './spec.ts';

/** Which UNet graph a job needs: k×k-conv LoRA branches only when a LoCon file is in use. */
export interface UNetVariant {
  loraConvs: boolean;
}

export interface EngineModels {
  textEncoder: CompiledNetwork;
  /** the denoising UNet with aggregated maps (`maps`) */
  unet: (v: UNetVariant) => Promise<CompiledNetwork>;
  guidance: (v: UNetVariant) => Promise<CompiledNetwork>;
  /** the published mode's guidance pass: both CFG halves, full UNet, noise before the update */
  publishedGuidance: (v: UNetVariant) => Promise<CompiledNetwork>;
  /** one chunk's term of ∂L/∂z from a maps cotangent (maps-vjp.ts); needed to chunk guidance */
  mapsVjp?: (v: UNetVariant) => Promise<CompiledNetwork>;
  /** the budget batches are split to fit; without it every batch runs whole */
  memory?: BatchMemory;
  vae: CompiledNetwork;
  schedulerConfig: Record<string, unknown>;
  latentChannels: number;
  contextDim: number;
  loadLora: LoadLora;
}

export interface BatchMemory {
  budgetBytes: number;
  model: UNetMemoryModel;
}

export interface RunSettings {
  steps: number;
  cfg: number;
  sampler: SamplerName;
  width: number;
  height: number;
  seed: number;
  /** [C, h, w] starting latent; default: seeded noise */
  initialLatent?: Float32Array;
  guidance: GuidanceOptions;
  textEncoderLora: boolean;
}

export type Phase = 'text' | 'guidance' | 'denoise' | 'decode';

export interface Progress {
  phase: Phase;
  /** 1-based step of the denoising loop (0 during text encoding) */
  step: number;
  steps: number;
  /** guidance: iteration within the step, and its loss */
  iteration?: number;
  loss?: number;
  elapsedMs: number;
  etaMs?: number;
  /** the current latent [C, h, w], for previews */
  latent?: Float32Array;
}

/** Receives intermediates by name (the reference runner and tests compare them). */
export type Trace = (name: string, step: number, data: Float32Array) => void;

export interface Hooks {
  signal?: AbortSignal;
  onProgress?: (p: Progress) => void;
  trace?: Trace;
}

export interface TokenMap {
  label: string;
  branch: number;
  position: number;
  /** grid rows × cols, row-major */
  values: Float32Array;
}

export interface CompositionOutput {
  /** raw decoder output [3, H, W], about [-1, 1] */
  image: Float32Array;
  width: number;
  height: number;
  latent: Float32Array;
  /** on the attention grid (rows × cols): [background, LoRA 1 … N] of the last step (CLoRA) */
  masks: Uint8Array[];
  /** the attention grid of masks and maps: a quarter of the latent on each axis */
  grid: AttentionGrid;
  maps: TokenMap[];
  losses: { step: number; iteration: number; loss: number }[];
  timings: Record<Phase | 'total', number>;
}

/** SD 1.x's VAE: one latent cell per 8×8 pixels. */
const VAE_SCALE = 8;

/** A guidance run's cost in denoise steps, for the ETA (its VJP covers about half the UNet). */
const GUIDANCE_RUN_COST = 0.6;

/** The latent's shape [C, h, w] and element count. */
interface LatentShape {
  channels: number;
  height: number;
  width: number;
  size: number;
}

/** Noise of every branch and the maps masks are read from, for one step. */
interface NoisePrediction {
  /** [uncond rows of every branch, cond rows of every branch], a latent each */
  noise: Float32Array;
  condMaps: Float32Array;
}

export async function runPlan(
  models: EngineModels,
  plan: CompositionPlan,
  run: RunSettings,
  hooks: Hooks = {},
): Promise<CompositionOutput> {
  const started = performance.now();
  const timings: CompositionOutput['timings'] = { text: 0, guidance: 0, denoise: 0, decode: 0, total: 0 };
  const trace = hooks.trace;
  const check = () => {
    if (hooks.signal?.aborted) throw new CancelledError('the composition was cancelled');
  };
  const n = plan.branches.length;
  const g = run.guidance;
  const mode = guidanceMode(g.published);
  const guided = plan.update && g.update;
  const latent = latentShape(models, run);
  const grid = attentionGrid(latent.height, latent.width);
  const batches = planMemory(models, n, latent, guided, mode);

  check();
  const t0 = performance.now();
  const prompts = await encodePrompts(models, plan, run);
  trace?.('text_embeddings', 0, concatRows([prompts.cond, prompts.uncond]));
  timings.text = performance.now() - t0;

  const scheduler = createScheduler(run.sampler, models.schedulerConfig);
  scheduler.setTimesteps(run.steps);
  let z = prepareLatents(scheduler, run, latent);
  trace?.('latents', 0, z);

  const variant = await unetVariant(models, plan);
  const predictor = await prepareNoisePredictor(
    models,
    variant,
    mode,
    plan,
    prompts,
    latent,
    batches.denoisePairs,
  );
  const guidance = guided
    ? await prepareGuidance(models, variant, mode, plan, prompts, batches, g.temperature)
    : undefined;

  const losses: CompositionOutput['losses'] = [];
  let masks: Uint8Array[] = [];
  let lastMaps: Float32Array | undefined;
  const timesteps = scheduler.timesteps;
  const unitsTotal =
    timesteps.length + (plan.update ? countGuidanceRuns(timesteps.length, g) * GUIDANCE_RUN_COST : 0);
  let unitsDone = 0;
  const progress = (p: Omit<Progress, 'elapsedMs' | 'etaMs' | 'steps'>) => {
    const elapsedMs = performance.now() - started;
    const etaMs = unitsDone > 0 ? (elapsedMs / unitsDone) * (unitsTotal - unitsDone) : undefined;
    hooks.onProgress?.({ ...p, steps: timesteps.length, elapsedMs, etaMs });
  };

  try {
    for (let i = 0; i < timesteps.length; i++) {
      const t = timesteps[i];
      let beforeUpdate: NoisePrediction | undefined;

      // guide: move the latent down the loss's gradient
      if (guidance && i < g.updateUntil) {
        const tg = performance.now();
        const updated = await guideLatent(
          z,
          { i, t },
          {
            guidance,
            mode,
            scheduler,
            latent,
            g,
            check,
            trace,
            onIteration: (loss, k, zNow) => {
              losses.push({ step: i, iteration: k, loss });
              unitsDone += GUIDANCE_RUN_COST;
              progress({ phase: 'guidance', step: i + 1, iteration: k + 1, loss, latent: zNow });
            },
          },
        );
        z = updated.z;
        beforeUpdate = updated.beforeUpdate;
        timings.guidance += performance.now() - tg;
      }

      // predict: every branch's noise on the (updated) latent
      check();
      const td = performance.now();
      const { noise, condMaps } =
        beforeUpdate ?? (await predictor.predict(scheduler.scaleModelInput(z, t), t, check));
      lastMaps = condMaps;
      trace?.('mask_maps', i, condMaps);
      trace?.('eps_uncond', i, noise.slice(0, n * latent.size));
      trace?.('eps_cond', i, noise.slice(n * latent.size));

      // fuse: each branch owns its masked pixels; then CFG
      const masking = plan.fusion === 'masks' && i >= g.applyMaskAfter && n > 1;
      if (masking) masks = branchMasksOf(plan, condMaps, grid, g);
      const eps = fuse(noise, masking ? masks : undefined, n, grid, latent, run.cfg, (name, data) =>
        trace?.(name, i, data),
      );
      trace?.('eps_guided', i, eps);

      // step
      z = scheduler.step(eps, t, z, stepNoise(run.seed, latent.size, i));
      trace?.('latents', i + 1, z);
      timings.denoise += performance.now() - td;
      unitsDone += 1;
      progress({ phase: 'denoise', step: i + 1, latent: z });
    }
  } finally {
    // the chunked guidance's loss session, also when the job is cancelled mid-loop
    await guidance?.release();
  }

  check();
  const tv = performance.now();
  progress({ phase: 'decode', step: timesteps.length });
  const image = await decodeLatents(models, z, latent);
  trace?.('image', 0, image);
  timings.decode = performance.now() - tv;
  timings.total = performance.now() - started;

  return {
    image,
    width: run.width,
    height: run.height,
    latent: z,
    masks,
    grid,
    maps: lastMaps ? tokenMaps(plan, lastMaps, grid) : [],
    losses,
    timings,
  };
}

function latentShape(models: EngineModels, run: RunSettings): LatentShape {
  const [height, width] = [run.height / VAE_SCALE, run.width / VAE_SCALE];
  const channels = models.latentChannels;
  return { channels, height, width, size: channels * height * width };
}

function dims(latent: LatentShape): [number, number, number] {
  return [latent.channels, latent.height, latent.width];
}

/** Refuses a job that cannot fit before any compute; otherwise how many branches share a call. */
function planMemory(
  models: EngineModels,
  n: number,
  latent: LatentShape,
  guided: boolean,
  mode: GuidanceMode,
): BatchPlan {
  const batches: BatchPlan = models.memory
    ? planBatches(
        models.memory.model,
        {
          branches: n,
          latentHeight: latent.height,
          latentWidth: latent.width,
          guided,
          published: mode.published,
        },
        models.memory.budgetBytes,
      )
    : { denoisePairs: n, guidanceBranches: guided ? n : 0, peakBytes: 0 };
  if (guided && needsChunks(mode, batches, n) && !models.mapsVjp)
    throw new Error('the guidance pass must be split to fit memory, and these models have no maps VJP graph');
  return batches;
}

function needsChunks(mode: GuidanceMode, batches: BatchPlan, n: number): boolean {
  return mode.chunks && batches.guidanceBranches < n;
}

/** Every branch prompt with its own LoRAs (when text-encoder LoRAs are on), and the negative prompt with none. */
async function encodePrompts(
  models: EngineModels,
  plan: CompositionPlan,
  run: RunSettings,
): Promise<PromptEmbeddings> {
  const n = plan.branches.length;
  const idRows = [...plan.branches.map((b) => b.tokens.ids), plan.negative.ids];
  const ids = new ort.Tensor('int64', BigInt64Array.from(idRows.flat().map(BigInt)), [
    n + 1,
    CLIP_CONTEXT_LENGTH,
  ]);
  const rows = [...plan.branches.map((_, i) => (run.textEncoderLora ? i : null)), null];
  const loras = await gateFeeds(
    models.textEncoder,
    models.loadLora,
    plan.branches.map((b) => b.loras),
    rows,
  );
  const hidden = (await models.textEncoder.model.run({ input_ids: ids, ...loras })).hidden
    .data as Float32Array;
  const rowSize = CLIP_CONTEXT_LENGTH * models.contextDim;
  return new PromptEmbeddings(hidden.slice(0, n * rowSize), hidden.slice(n * rowSize), models.contextDim);
}

/** The starting latent: the given one or seeded noise, at the scheduler's initial noise level. */
function prepareLatents(scheduler: Scheduler, run: RunSettings, latent: LatentShape): Float32Array {
  const start = run.initialLatent ?? gaussianNoise(run.seed, latent.size, INITIAL_NOISE_STREAM);
  return Float32Array.from(start, (v) => v * scheduler.initNoiseSigma);
}

/** The UNet graph the plan's LoRAs need: k×k-conv branches only when a LoCon file is in use. */
async function unetVariant(models: EngineModels, plan: CompositionPlan): Promise<UNetVariant> {
  for (const b of plan.branches) {
    for (const { lora } of b.loras) {
      const { modules } = await models.loadLora(lora);
      if (LoraSlots.needSpatialConvs('unet', modules)) return { loraConvs: true };
    }
  }
  return { loraConvs: false };
}

/** The denoise pass: every branch's (uncond, cond) pair, in chunks of pairs that fit the memory budget. */
async function prepareNoisePredictor(
  models: EngineModels,
  variant: UNetVariant,
  mode: GuidanceMode,
  plan: CompositionPlan,
  prompts: PromptEmbeddings,
  latent: LatentShape,
  pairsPerCall: number,
) {
  const unet = await models.unet(variant);
  const branchLoras = plan.branches.map((b) => b.loras);
  const calls = await Promise.all(
    spans(plan.branches.length, pairsPerCall).map(async ([from, to]) => ({
      pairs: to - from,
      feeds: {
        context: prompts.pairs(from, to),
        ...(await gateFeeds(unet, models.loadLora, branchLoras, [...range(from, to), ...range(from, to)])),
      },
    })),
  );
  return {
    async predict(scaled: Float32Array, t: number, check: () => void): Promise<NoisePrediction> {
      const uncondParts: Float32Array[] = [];
      const condParts: Float32Array[] = [];
      const mapParts: Float32Array[] = [];
      for (const { pairs, feeds } of calls) {
        const out = await unet.model.run({
          ...feeds,
          sample: G.hostTensor('float32', repeat(scaled, 2 * pairs), [2 * pairs, ...dims(latent)]),
          timestep: timestepFeed(t, 2 * pairs),
        });
        const noise = out.noise.data as Float32Array;
        uncondParts.push(noise.subarray(0, pairs * latent.size));
        condParts.push(noise.subarray(pairs * latent.size));
        mapParts.push(mode.maskMaps(out.maps.data as Float32Array));
        check();
      }
      return { noise: concatRows([...uncondParts, ...condParts]), condMaps: concatRows(mapParts) };
    },
  };
}

/** The guidance the memory budget allows: one run of every branch, or branch chunks. */
function prepareGuidance(
  models: EngineModels,
  variant: UNetVariant,
  mode: GuidanceMode,
  plan: CompositionPlan,
  prompts: PromptEmbeddings,
  batches: BatchPlan,
  temperature: number,
): Promise<Guidance> {
  const graphs = {
    guidance: () => models.guidance(variant),
    publishedGuidance: () => models.publishedGuidance(variant),
    unet: () => models.unet(variant),
    loadLora: models.loadLora,
  };
  const n = plan.branches.length;
  if (needsChunks(mode, batches, n)) {
    const mapsVjp = models.mapsVjp!;
    return chunkedGuidance(
      { ...graphs, mapsVjp: () => mapsVjp(variant) },
      plan,
      prompts,
      batches.guidanceBranches,
      temperature,
    );
  }
  return oneRunGuidance(mode, graphs, plan, prompts);
}

/**
 * One step's latent updates (METHOD.md): one, or `iterations` at the iterative steps, each
 * z ← z − α ∂L/∂z; a burst ends early below the loss threshold when one is set.
 */
async function guideLatent(
  z: Float32Array,
  { i, t }: { i: number; t: number },
  run: {
    guidance: Guidance;
    mode: GuidanceMode;
    scheduler: Scheduler;
    latent: LatentShape;
    g: GuidanceOptions;
    check: () => void;
    trace?: Trace;
    onIteration: (loss: number, k: number, z: Float32Array) => void;
  },
): Promise<{ z: Float32Array; beforeUpdate?: NoisePrediction }> {
  const { guidance, mode, scheduler, latent, g, check, trace } = run;
  const iterations = g.iterativeSteps.includes(i) ? g.iterations : 1;
  let beforeUpdate: NoisePrediction | undefined;
  for (let k = 0; k < iterations; k++) {
    check();
    const scaled = scheduler.scaleModelInput(z, t);
    const out = await guidance.run(G.hostTensor('float32', scaled, [1, ...dims(latent)]), t);
    if (k === 0 || k === iterations - 1) trace?.('update_maps', i, out.maps);
    trace?.('loss', i, Float32Array.of(out.loss));
    trace?.('grad', i, out.grad);
    if (mode.reusesGuidanceNoise) beforeUpdate = { noise: out.noise!, condMaps: out.maps };
    // the graph's gradient is with respect to the scaled input
    z = descend(z, out.grad, g.stepSize * scheduler.inputScale(t));
    run.onIteration(out.loss, k, z);
    if (g.lossThreshold !== undefined && out.loss < g.lossThreshold) break;
  }
  trace?.('latents_after_update', i, z);
  return { z, beforeUpdate };
}

/**
 * Masked fusion and CFG: each branch's noise weighted by its mask on the latent grid (all
 * branches alike without masks), uncond and cond halves alike, then guided.
 */
function fuse(
  noise: Float32Array,
  masks: Uint8Array[] | undefined,
  n: number,
  grid: AttentionGrid,
  latent: LatentShape,
  cfg: number,
  trace: (name: string, data: Float32Array) => void,
): Float32Array {
  const rows = branchRows(noise, 2 * n);
  let weights: ArrayLike<number>[];
  if (masks) {
    weights = masks.map((m) => resizeNearest(m, grid, latent.height, latent.width));
    for (const m of masks) trace('masks_lowres', Float32Array.from(m));
    for (const m of weights) trace('masks', Float32Array.from(m));
  } else {
    weights = Array.from({ length: n }, () => new Uint8Array(latent.height * latent.width).fill(1));
  }
  const fused = (half: Float32Array[]) => fuseNoise(half, weights, latent.channels);
  return guide(fused(rows.slice(0, n)), fused(rows.slice(n)), cfg);
}

/** z − step · grad, rounded to float32 as the latent is kept. */
function descend(z: Float32Array, grad: Float32Array, step: number): Float32Array {
  return z.map((v, j) => v - step * grad[j]);
}

/** `data` as `count` equal rows. */
function branchRows(data: Float32Array, count: number): Float32Array[] {
  const size = data.length / count;
  return Array.from({ length: count }, (_, i) => data.subarray(i * size, (i + 1) * size));
}

/** Each LoRA branch's mask (its trigger and subject tokens), and the base's where none is set. */
function branchMasksOf(
  plan: CompositionPlan,
  condMaps: Float32Array,
  grid: AttentionGrid,
  g: GuidanceOptions,
): Uint8Array[] {
  const cells = grid.rows * grid.cols;
  const perBranch = plan.branches.map((_, b) =>
    mapsFromAggregate(condMaps, grid, CLIP_CONTEXT_LENGTH, b * cells * CLIP_CONTEXT_LENGTH),
  );
  return branchMasks(perBranch, plan.maskTokens, g.maskThreshold, g.morphology);
}

async function decodeLatents(
  models: EngineModels,
  z: Float32Array,
  latent: LatentShape,
): Promise<Float32Array> {
  const out = await models.vae.model.run({ latents: G.hostTensor('float32', z, [1, ...dims(latent)]) });
  return out.image.data as Float32Array;
}

function countGuidanceRuns(steps: number, g: GuidanceOptions): number {
  let runs = 0;
  for (let i = 0; i < Math.min(steps, g.updateUntil); i++)
    runs += g.iterativeSteps.includes(i) ? g.iterations : 1;
  return runs;
}

/** The maps a user wants to see: each group member's and each mask token's, labelled. */
function tokenMaps(plan: CompositionPlan, maps: Float32Array, grid: AttentionGrid): TokenMap[] {
  const seen = new Set<string>();
  const out: TokenMap[] = [];
  const add = (branch: number, position: number) => {
    const key = `${branch}:${position}`;
    if (seen.has(key)) return;
    seen.add(key);
    const word = plan.branches[branch].tokens.tokens[position]?.replace('</w>', '') ?? `#${position}`;
    out.push({
      label: `${word} (P${branch})`,
      branch,
      position,
      values: mapsFromAggregate(
        maps,
        grid,
        CLIP_CONTEXT_LENGTH,
        branch * grid.rows * grid.cols * CLIP_CONTEXT_LENGTH,
      ).token(position),
    });
  };
  for (const group of plan.groups) for (const m of group) add(m.prompt, m.position);
  plan.maskTokens.forEach((positions, i) => {
    for (const p of positions) add(i + 1, p);
  });
  return out;
}
