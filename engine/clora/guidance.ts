// The guidance pass at run time: maps, the contrastive loss and ∂L/∂z for a latent, from one
// run of the guidance graph or, when memory demands it, from branch chunks whose terms add
// up to the same gradient. How guidance relates to the denoise pass is a strategy: ours
// (conditional maps, noise predicted after the update) or the published code's.

import type { HostTensor } from '../graph/index.ts';
import * as G from '../graph/index.ts';
import type { CompiledNetwork } from '../models/compiled.ts';
import { CLIP_CONTEXT_LENGTH } from '../tokenizer/index.ts';
import {
  concatRows,
  gateFeeds,
  type LoadLora,
  type PromptEmbeddings,
  range,
  repeat,
  spans,
  timestepFeed,
} from './batch.ts';
import { groupFeeds, lossOnlyGraph } from './loss.ts';
import type { BranchLora, CompositionPlan } from './plan.ts';

/** What one guidance run returns for a latent. */
export interface GuidanceOutput {
  loss: number;
  /** ∂L/∂(the UNet's input), [1, C, h, w] */
  grad: Float32Array;
  /** the aggregated maps the loss read */
  maps: Float32Array;
  /** the published mode's noise of every (uncond, cond) row, predicted before the update */
  noise?: Float32Array;
}

export interface Guidance {
  /** `latent` is the UNet's (scaled) input [1, C, h, w] */
  run(latent: HostTensor, t: number): Promise<GuidanceOutput>;
  release(): Promise<void>;
}

/** The guidance graphs a mode compiles, by UNet variant. */
export interface GuidanceModels {
  guidance: () => Promise<CompiledNetwork>;
  publishedGuidance: () => Promise<CompiledNetwork>;
  unet: () => Promise<CompiledNetwork>;
  mapsVjp?: () => Promise<CompiledNetwork>;
  loadLora: LoadLora;
}

/** Where our method and the published code differ (METHOD.md), as one object the loop asks. */
export interface GuidanceMode {
  /** the published code's behaviour (the memory model counts its larger guidance batch) */
  readonly published: boolean;
  /** the one-run guidance graph of this mode */
  network(models: GuidanceModels): Promise<CompiledNetwork>;
  /** the branch each row of a guidance batch over `n` branches runs */
  rows(n: number): number[];
  /** the text context of those rows */
  context(prompts: PromptEmbeddings, n: number): HostTensor;
  /** whether guidance may run in branch chunks (the maps VJP serves conditional maps only) */
  readonly chunks: boolean;
  /** whether a step that updated the latent takes its noise and maps from the last guidance run */
  readonly reusesGuidanceNoise: boolean;
  /** the maps masks are read from, out of a denoise batch's [uncond rows, cond rows] maps */
  maskMaps(maps: Float32Array): Float32Array;
}

/** Ours: maps of the conditional half only; the denoise pass runs on the updated latent. */
export const CONDITIONAL_GUIDANCE: GuidanceMode = {
  published: false,
  network: (models) => models.guidance(),
  rows: (n) => range(0, n),
  context: (prompts, n) => prompts.branches(0, n),
  chunks: true,
  reusesGuidanceNoise: false,
  maskMaps: (maps) => maps.slice(maps.length / 2),
};

/** The published code: maps of both CFG halves; noise predicted before the update is stepped. */
export const PUBLISHED_GUIDANCE: GuidanceMode = {
  published: true,
  network: (models) => models.publishedGuidance(),
  rows: (n) => [...range(0, n), ...range(0, n)],
  context: (prompts, n) => prompts.pairs(0, n),
  chunks: false,
  reusesGuidanceNoise: true,
  maskMaps: averageHalves,
};

export function guidanceMode(published: boolean): GuidanceMode {
  return published ? PUBLISHED_GUIDANCE : CONDITIONAL_GUIDANCE;
}

function averageHalves(maps: Float32Array): Float32Array {
  const half = maps.length / 2;
  const out = new Float32Array(half);
  for (let i = 0; i < half; i++) out[i] = (maps[i] + maps[half + i]) / 2;
  return out;
}

/** Every branch in one run of the mode's guidance graph. */
export async function oneRunGuidance(
  mode: GuidanceMode,
  models: GuidanceModels,
  plan: CompositionPlan,
  prompts: PromptEmbeddings,
): Promise<Guidance> {
  const n = plan.branches.length;
  const net = await mode.network(models);
  const rows = mode.rows(n);
  const branchLoras = plan.branches.map((b) => b.loras);
  const feeds: Record<string, HostTensor> = {
    context: mode.context(prompts, n),
    ...groupFeeds(plan.groups, n, CLIP_CONTEXT_LENGTH),
    ...(await gateFeeds(net, models.loadLora, branchLoras, rows)),
  };
  return {
    async run(latent, t) {
      const out = await net.model.run({ ...feeds, latent, timestep: timestepFeed(t, rows.length) });
      return {
        loss: (out.loss.data as Float32Array)[0],
        grad: out.grad.data as Float32Array,
        maps: out.maps.data as Float32Array,
        ...(out.noise ? { noise: out.noise.data as Float32Array } : {}),
      };
    },
    release: async () => {},
  };
}

/**
 * Guidance one chunk of branches at a time. The loss couples all branches' maps, so: (1) each
 * chunk's maps from the forward UNet, (2) L and ∂L/∂maps of all of them on the loss graph,
 * (3) each chunk's term (∂maps/∂z)ᵀ ∂L/∂maps from the maps-VJP graph, summed: the same ∂L/∂z
 * as one run, for about one extra forward per chunk.
 */
export async function chunkedGuidance(
  models: GuidanceModels & { mapsVjp: () => Promise<CompiledNetwork> },
  plan: CompositionPlan,
  prompts: PromptEmbeddings,
  chunkBranches: number,
  temperature: number,
): Promise<Guidance> {
  const n = plan.branches.length;
  const tokens = CLIP_CONTEXT_LENGTH;
  const branchLoras: readonly BranchLora[][] = plan.branches.map((b) => b.loras);
  const [forward, vjp] = await Promise.all([models.unet(), models.mapsVjp()]);
  const lossGraph = await G.compile(lossOnlyGraph(temperature));
  const groups = groupFeeds(plan.groups, n, tokens);
  const parts = await Promise.all(
    spans(n, chunkBranches).map(async ([from, to]) => {
      const rows = range(from, to);
      const context = prompts.branches(from, to);
      return {
        from,
        to,
        forwardFeeds: { context, ...(await gateFeeds(forward, models.loadLora, branchLoras, rows)) },
        vjpFeeds: { context, ...(await gateFeeds(vjp, models.loadLora, branchLoras, rows)) },
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
          timestep: timestepFeed(t, k),
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
          timestep: timestepFeed(t, k),
          maps_cotangent: G.hostTensor(
            'float32',
            cotangent.slice(p.from * cells * tokens, p.to * cells * tokens),
            [k, cells, tokens],
          ),
        });
        const term = out.grad.data as Float32Array;
        for (let j = 0; j < grad.length; j++) grad[j] += term[j];
      }
      return { loss: (loss.loss.data as Float32Array)[0], grad, maps: all };
    },
    release: () => lossGraph.release(),
  };
}
