// The denoising loop of a composition (METHOD.md): encode each branch's prompt with its
// own LoRAs; at early steps move the latent down the contrastive loss's gradient (one
// guidance run returns maps, loss and ∂L/∂z); then predict every branch's noise in one
// batched call on the updated latent, fuse it with the branches' masks, apply CFG and
// step the scheduler; finally decode.

import * as ort from 'onnxruntime-node';
import type { HostTensor } from '../graph/index.ts';
import * as G from '../graph/index.ts';
import { type GatedLora, type LoraFactors, loraFeeds } from '../lora/gated.ts';
import type { CompiledNetwork } from '../models/compiled.ts';
import { createScheduler, type SamplerName } from '../schedulers/index.ts';
import { gaussianNoise, INITIAL_NOISE_STREAM, stepNoise } from '../schedulers/noise.ts';
import { groupFeeds, lossOnlyGraph } from './loss.ts';
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
import type { BranchLora, CompositionPlan } from './plan.ts';
import type { GuidanceOptions, LoraRef } from './spec.ts';

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
  loadLora: (ref: LoraRef) => Promise<{ modules: readonly LoraFactors[] }>;
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

export class CancelledError extends Error {
  override name = 'CancelledError';
}

/** Which LoRAs the branches use, as gated feeds for a batch laid out by `rows` (branch per row). */
async function gates(
  models: EngineModels,
  branchLoras: readonly BranchLora[][],
  rows: readonly (number | null)[],
): Promise<GatedLora[]> {
  const byPath = new Map<string, { ref: LoraRef; weights: number[] }>();
  rows.forEach((branch, row) => {
    if (branch === null) return;
    for (const { lora, weight } of branchLoras[branch]) {
      let entry = byPath.get(lora.path);
      if (!entry) {
        entry = { ref: lora, weights: new Array(rows.length).fill(0) };
        byPath.set(lora.path, entry);
      }
      entry.weights[row] += weight;
    }
  });
  const out: GatedLora[] = [];
  for (const { ref, weights } of byPath.values())
    out.push({ modules: (await models.loadLora(ref)).modules, weights });
  return out;
}

function repeat(x: Float32Array, times: number): Float32Array {
  const out = new Float32Array(x.length * times);
  for (let i = 0; i < times; i++) out.set(x, i * x.length);
  return out;
}

function rows(data: Float32Array, count: number): Float32Array[] {
  const size = data.length / count;
  return Array.from({ length: count }, (_, i) => data.subarray(i * size, (i + 1) * size));
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
  const c = models.latentChannels;
  const h = run.height / 8;
  const w = run.width / 8;
  const grid = attentionGrid(h, w);
  const cells = grid.rows * grid.cols;
  const tokens = 77;
  const g = run.guidance;
  const branchLoras = plan.branches.map((b) => b.loras);
  const guided = plan.update && g.update;
  // Refuses a job that cannot fit before any compute; otherwise how many branches share a call.
  const batches: BatchPlan = models.memory
    ? planBatches(
        models.memory.model,
        { branches: n, latentHeight: h, latentWidth: w, guided, published: g.published },
        models.memory.budgetBytes,
      )
    : { denoisePairs: n, guidanceBranches: guided ? n : 0, peakBytes: 0 };
  if (guided && !g.published && batches.guidanceBranches < n && !models.mapsVjp)
    throw new Error('the guidance pass must be split to fit memory, and these models have no maps VJP graph');

  // 1. text: every branch prompt with its own LoRAs, and the negative prompt with none.
  check();
  const t0 = performance.now();
  const idRows = [...plan.branches.map((b) => b.tokens.ids), plan.negative.ids];
  const ids = new ort.Tensor('int64', BigInt64Array.from(idRows.flat().map(BigInt)), [n + 1, tokens]);
  const teRows = [...plan.branches.map((_, i) => (run.textEncoderLora ? i : null)), null];
  const teFeeds = models.textEncoder.slots
    ? loraFeeds(models.textEncoder.slots, await gates(models, branchLoras, teRows), n + 1)
    : {};
  const hidden = (await models.textEncoder.model.run({ input_ids: ids, ...teFeeds })).hidden
    .data as Float32Array;
  trace?.('text_embeddings', 0, hidden);
  const rowSize = tokens * models.contextDim;
  const condCtx = hidden.slice(0, n * rowSize);
  const uncond = hidden.slice(n * rowSize);
  timings.text = performance.now() - t0;

  // 2. the loop
  const scheduler = createScheduler(run.sampler, models.schedulerConfig);
  scheduler.setTimesteps(run.steps);
  const latentSize = c * h * w;
  const start = run.initialLatent ?? gaussianNoise(run.seed, latentSize, INITIAL_NOISE_STREAM);
  let z: Float32Array = Float32Array.from(start, (v) => v * scheduler.initNoiseSigma);
  trace?.('latents', 0, z);

  const variant: UNetVariant = { loraConvs: false };
  for (const b of plan.branches) {
    for (const { lora } of b.loras) {
      const { modules } = await models.loadLora(lora);
      if (
        modules.some(
          (m) => m.target === 'unet' && m.downShape.length === 4 && m.downShape[2] * m.downShape[3] > 1,
        )
      ) {
        variant.loraConvs = true;
      }
    }
  }
  const unet = await models.unet(variant);
  const unetRows = [...plan.branches.map((_, i) => i), ...plan.branches.map((_, i) => i)];
  /** The denoise feeds of branches [from, to): their uncond rows, then their cond rows. */
  const pairFeeds = async (from: number, to: number): Promise<Record<string, HostTensor>> => {
    const k = to - from;
    const ctx = new Float32Array(2 * k * rowSize);
    for (let i = 0; i < k; i++) ctx.set(uncond, i * rowSize);
    ctx.set(condCtx.subarray(from * rowSize, to * rowSize), k * rowSize);
    const rows = [...range(from, to), ...range(from, to)];
    return {
      context: G.hostTensor('float32', ctx, [2 * k, tokens, models.contextDim]),
      ...(unet.slots ? loraFeeds(unet.slots, await gates(models, branchLoras, rows), 2 * k) : {}),
    };
  };
  const denoiseChunks = await Promise.all(
    chunks(n, batches.denoisePairs).map(async ([from, to]) => ({
      from,
      to,
      feeds: await pairFeeds(from, to),
    })),
  );

  let guidanceNet: CompiledNetwork | undefined;
  let guidanceFeeds: Record<string, HostTensor> = {};
  let chunkedGuidance: ChunkedGuidance | undefined;
  if (guided && !g.published && batches.guidanceBranches < n) {
    chunkedGuidance = await prepareChunkedGuidance(
      models,
      variant,
      plan,
      condCtx,
      branchLoras,
      batches,
      rowSize,
      g.temperature,
    );
  } else if (guided) {
    guidanceNet = await (g.published ? models.publishedGuidance(variant) : models.guidance(variant));
    const guidedRows = g.published ? unetRows : plan.branches.map((_, i) => i);
    guidanceFeeds = {
      context: g.published
        ? (await pairFeeds(0, n)).context
        : G.hostTensor('float32', condCtx, [n, tokens, models.contextDim]),
      ...groupFeeds(plan.groups, n, tokens),
      ...(guidanceNet.slots
        ? loraFeeds(guidanceNet.slots, await gates(models, branchLoras, guidedRows), guidedRows.length)
        : {}),
    };
  }

  const losses: CompositionOutput['losses'] = [];
  let masks: Uint8Array[] = [];
  let lastMaps: Float32Array | undefined;
  const timesteps = scheduler.timesteps;
  const unitsTotal = timesteps.length + (plan.update ? countGuidanceRuns(timesteps.length, g) * 0.6 : 0);
  let unitsDone = 0;
  const progress = (p: Omit<Progress, 'elapsedMs' | 'etaMs' | 'steps'>) => {
    const elapsedMs = performance.now() - started;
    const etaMs = unitsDone > 0 ? (elapsedMs / unitsDone) * (unitsTotal - unitsDone) : undefined;
    hooks.onProgress?.({ ...p, steps: timesteps.length, elapsedMs, etaMs });
  };

  try {
    for (let i = 0; i < timesteps.length; i++) {
      const t = timesteps[i];
      let noiseBeforeUpdate: Float32Array | undefined;
      let mapsBeforeUpdate: Float32Array | undefined;

      // 2a. latent updates
      if ((guidanceNet || chunkedGuidance) && i < g.updateUntil) {
        const tg = performance.now();
        const iterations = g.iterativeSteps.includes(i) ? g.iterations : 1;
        const batch = g.published ? 2 * n : n;
        for (let k = 0; k < iterations; k++) {
          check();
          const scaled = scheduler.scaleModelInput(z, t);
          const inputScale = z[0] !== 0 ? scaled[0] / z[0] : 1;
          const latent = G.hostTensor('float32', scaled, [1, c, h, w]);
          const out = chunkedGuidance
            ? await chunkedGuidance.run(latent, t)
            : await guidanceNet!.model.run({
                ...guidanceFeeds,
                latent,
                timestep: G.hostTensor('float32', new Float32Array(batch).fill(t), [batch]),
              });
          const loss = (out.loss.data as Float32Array)[0];
          const grad = out.grad.data as Float32Array;
          if (k === 0 || k === iterations - 1) trace?.('update_maps', i, out.maps.data as Float32Array);
          trace?.('loss', i, Float32Array.of(loss));
          trace?.('grad', i, grad);
          if (g.published) {
            noiseBeforeUpdate = out.noise.data as Float32Array;
            mapsBeforeUpdate = out.maps.data as Float32Array;
          }
          const step = g.stepSize * inputScale;
          z = z.map((v, j) => v - step * grad[j]);
          losses.push({ step: i, iteration: k, loss });
          unitsDone += 0.6;
          progress({ phase: 'guidance', step: i + 1, iteration: k + 1, loss, latent: z });
          if (g.lossThreshold !== undefined && loss < g.lossThreshold) break;
        }
        trace?.('latents_after_update', i, z);
        timings.guidance += performance.now() - tg;
      }

      // 2b. every branch's noise on the (updated) latent, in one batched call
      check();
      const td = performance.now();
      let noise: Float32Array;
      let condMaps: Float32Array;
      if (noiseBeforeUpdate && mapsBeforeUpdate) {
        noise = noiseBeforeUpdate;
        condMaps = mapsBeforeUpdate;
      } else {
        // in chunks of (uncond, cond) pairs when the whole batch exceeds the memory budget
        const scaled = scheduler.scaleModelInput(z, t);
        const uncondParts: Float32Array[] = [];
        const condParts: Float32Array[] = [];
        const mapParts: Float32Array[] = [];
        for (const chunk of denoiseChunks) {
          const k = chunk.to - chunk.from;
          const out = await unet.model.run({
            ...chunk.feeds,
            sample: G.hostTensor('float32', repeat(scaled, 2 * k), [2 * k, c, h, w]),
            timestep: G.hostTensor('float32', new Float32Array(2 * k).fill(t), [2 * k]),
          });
          const chunkNoise = out.noise.data as Float32Array;
          const maps = out.maps.data as Float32Array;
          uncondParts.push(chunkNoise.subarray(0, k * latentSize));
          condParts.push(chunkNoise.subarray(k * latentSize));
          mapParts.push(g.published ? averageHalves(maps) : maps.slice(maps.length / 2));
          check();
        }
        noise = concatRows([...uncondParts, ...condParts]);
        condMaps = concatRows(mapParts);
      }
      lastMaps = condMaps;
      trace?.('mask_maps', i, condMaps);
      const [epsU, epsC] = [rows(noise, 2 * n).slice(0, n), rows(noise, 2 * n).slice(n)];
      trace?.('eps_uncond', i, noise.slice(0, n * latentSize));
      trace?.('eps_cond', i, noise.slice(n * latentSize));

      // 2c. masks and fusion
      let weights: ArrayLike<number>[];
      if (plan.fusion === 'masks' && i >= g.applyMaskAfter && n > 1) {
        const perBranch = Array.from({ length: n }, (_, b) =>
          mapsFromAggregate(condMaps, grid, tokens, b * cells * tokens),
        );
        masks = branchMasks(perBranch, plan.maskTokens, g.maskThreshold, g.morphology);
        weights = masks.map((m) => resizeNearest(m, grid, h, w));
        for (const m of masks) trace?.('masks_lowres', i, Float32Array.from(m));
        for (const m of weights) trace?.('masks', i, Float32Array.from(m));
      } else {
        weights = epsU.map(() => new Uint8Array(h * w).fill(1));
      }
      const eps = guide(fuseNoise(epsU, weights, c), fuseNoise(epsC, weights, c), run.cfg);
      trace?.('eps_guided', i, eps);
      z = scheduler.step(eps, t, z, stepNoise(run.seed, latentSize, i));
      trace?.('latents', i + 1, z);
      timings.denoise += performance.now() - td;
      unitsDone += 1;
      progress({ phase: 'denoise', step: i + 1, latent: z });
    }
  } finally {
    // the chunked guidance's loss session, also when the job is cancelled mid-loop
    await chunkedGuidance?.release();
  }

  // 3. decode
  check();
  const tv = performance.now();
  progress({ phase: 'decode', step: timesteps.length });
  const image = (await models.vae.model.run({ latents: G.hostTensor('float32', z, [1, c, h, w]) })).image
    .data as Float32Array;
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
    maps: lastMaps ? tokenMaps(plan, lastMaps, grid, tokens) : [],
    losses,
    timings,
  };
}

function averageHalves(maps: Float32Array): Float32Array {
  const half = maps.length / 2;
  const out = new Float32Array(half);
  for (let i = 0; i < half; i++) out[i] = (maps[i] + maps[half + i]) / 2;
  return out;
}

function concatRows(parts: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((total, p) => total + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, i) => from + i);
}

/** [from, to) spans of `size` items or fewer covering 0 … total − 1 in order. */
function chunks(total: number, size: number): [number, number][] {
  const out: [number, number][] = [];
  for (let from = 0; from < total; from += size) out.push([from, Math.min(total, from + size)]);
  return out;
}

/** A guided pass over branch chunks that returns what the one-run guidance graph returns. */
interface ChunkedGuidance {
  run(latent: HostTensor, t: number): Promise<Record<string, { data: unknown }>>;
  release(): Promise<void>;
}

/**
 * Guidance one chunk of branches at a time. The loss couples all branches' maps, so: (1) each
 * chunk's maps from the forward UNet, (2) L and ∂L/∂maps of all of them on the loss graph,
 * (3) each chunk's term (∂maps/∂z)ᵀ ∂L/∂maps from the maps-VJP graph, summed: the same ∂L/∂z
 * as one run, for about one extra forward per chunk.
 */
async function prepareChunkedGuidance(
  models: EngineModels,
  variant: UNetVariant,
  plan: CompositionPlan,
  condCtx: Float32Array,
  branchLoras: readonly BranchLora[][],
  batches: BatchPlan,
  rowSize: number,
  temperature: number,
): Promise<ChunkedGuidance> {
  const n = plan.branches.length;
  const tokens = 77;
  const [forward, vjp] = await Promise.all([models.unet(variant), models.mapsVjp!(variant)]);
  const lossGraph = await G.compile(lossOnlyGraph(temperature));
  const groups = groupFeeds(plan.groups, n, tokens);
  const parts = await Promise.all(
    chunks(n, batches.guidanceBranches).map(async ([from, to]) => {
      const rows = range(from, to);
      const context = G.hostTensor('float32', condCtx.slice(from * rowSize, to * rowSize), [
        to - from,
        tokens,
        models.contextDim,
      ]);
      const lora = await gates(models, branchLoras, rows);
      return {
        from,
        to,
        forwardFeeds: { context, ...(forward.slots ? loraFeeds(forward.slots, lora, rows.length) : {}) },
        vjpFeeds: { context, ...(vjp.slots ? loraFeeds(vjp.slots, lora, rows.length) : {}) },
      };
    }),
  );
  return {
    async run(latent, t) {
      const [, channels, h, w] = latent.dims;
      const one = latent.data as Float32Array;
      const maps: Float32Array[] = [];
      for (const p of parts) {
        const k = p.to - p.from;
        const out = await forward.model.run({
          ...p.forwardFeeds,
          sample: G.hostTensor('float32', repeat(one, k), [k, channels, h, w]),
          timestep: G.hostTensor('float32', new Float32Array(k).fill(t), [k]),
        });
        maps.push(out.maps.data as Float32Array);
      }
      const all = concatRows(maps);
      const cells = all.length / n / tokens;
      const loss = await lossGraph.run({ maps: G.hostTensor('float32', all, [n, cells, tokens]), ...groups });
      const cotangent = loss.grad_maps.data as Float32Array;
      const grad = new Float32Array(one.length);
      for (const p of parts) {
        const k = p.to - p.from;
        const out = await vjp.model.run({
          ...p.vjpFeeds,
          latent,
          timestep: G.hostTensor('float32', new Float32Array(k).fill(t), [k]),
          maps_cotangent: G.hostTensor(
            'float32',
            cotangent.slice(p.from * cells * tokens, p.to * cells * tokens),
            [k, cells, tokens],
          ),
        });
        const term = out.grad.data as Float32Array;
        for (let j = 0; j < grad.length; j++) grad[j] += term[j];
      }
      return { loss: loss.loss, grad: { data: grad }, maps: { data: all } };
    },
    release: () => lossGraph.release(),
  };
}

function countGuidanceRuns(steps: number, g: GuidanceOptions): number {
  let runs = 0;
  for (let i = 0; i < Math.min(steps, g.updateUntil); i++)
    runs += g.iterativeSteps.includes(i) ? g.iterations : 1;
  return runs;
}

/** The maps a user wants to see: each group member's and each mask token's, labelled. */
function tokenMaps(
  plan: CompositionPlan,
  maps: Float32Array,
  grid: AttentionGrid,
  tokens: number,
): TokenMap[] {
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
      values: mapsFromAggregate(maps, grid, tokens, branch * grid.rows * grid.cols * tokens).token(position),
    });
  };
  for (const group of plan.groups) for (const m of group) add(m.prompt, m.position);
  plan.maskTokens.forEach((positions, i) => {
    for (const p of positions) add(i + 1, p);
  });
  return out;
}
