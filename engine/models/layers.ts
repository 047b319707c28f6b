// Layers addressed by their checkpoint module path (`down_blocks.0.resnets.1.conv1`), so
// loading a weight is a name lookup and a missing key is a clear error. Adaptable layers
// get a gated LoRA branch when the model is built with LoRA slots.

import type { Tensor } from '../graph/index.ts';
import * as G from '../graph/index.ts';
import type { LoraSlots } from '../lora/gated.ts';
import type { WeightSet } from '../weights/checkpoint.ts';
import type { AttentionSettings } from './attention.ts';

export interface ModelContext {
  graph: G.Graph;
  weights: WeightSet;
  dtype: 'float32' | 'float16';
  /** prefix for graph weight names, so several networks can share one graph */
  namespace: string;
  lora?: LoraSlots;
  /** the attention kernel; unset materialises every layer's probabilities */
  attention?: AttentionSettings;
  /** weights to read as graph inputs (named as in the graph) instead of constants, so a training graph can differentiate them */
  trainable?: (name: string) => boolean;
}

export class MissingWeightError extends Error {
  override name = 'MissingWeightError';
}

const paramCache = new WeakMap<G.Graph, Map<string, Tensor>>();

/** The weight tensor `name` of the checkpoint, as a graph constant or a trainable input (one per graph). */
export function param(ctx: ModelContext, name: string): Tensor {
  let cache = paramCache.get(ctx.graph);
  if (!cache) {
    cache = new Map();
    paramCache.set(ctx.graph, cache);
  }
  const key = `${ctx.namespace}${name}`;
  const hit = cache.get(key);
  if (hit) return hit;
  if (!ctx.weights.has(name)) {
    throw new MissingWeightError(
      `the checkpoint has no weight '${name}' (needed by ${ctx.namespace || 'the model'}); is it a Stable Diffusion 1.x checkpoint?`,
    );
  }
  const shape = ctx.weights.shape(name);
  const t = ctx.trainable?.(name)
    ? ctx.graph.input(key, ctx.dtype, shape)
    : ctx.graph.weight(key, ctx.dtype, shape, ctx.weights.weightData(name, ctx.dtype));
  cache.set(key, t);
  return t;
}

export function hasParam(ctx: ModelContext, name: string): boolean {
  return ctx.weights.has(name);
}

/** PyTorch Linear at `path` (weight [out, in], optional bias), with its LoRA branch. */
export function linearLayer(ctx: ModelContext, path: string, x: Tensor): Tensor {
  const w = param(ctx, `${path}.weight`);
  const bias = hasParam(ctx, `${path}.bias`) ? param(ctx, `${path}.bias`) : undefined;
  const [outF, inF] = w.shape as number[];
  if (!ctx.lora?.has(path)) return G.linear(x, w, bias);
  const rows = x.rank === 2 ? x : G.reshape(x, [-1, inF]);
  const y = G.add(
    G.gemm(rows, w, { transB: true, c: bias }),
    ctx.lora.linearBranch(rows, x.shape[0], path, inF, outF),
  );
  return x.rank === 2 ? y : G.reshape(y, [...x.shape.slice(0, -1), outF]);
}

/** PyTorch Conv2d at `path` (weight [out, in, kh, kw]), with its LoRA (LoCon) branch. */
export function convLayer(
  ctx: ModelContext,
  path: string,
  x: Tensor,
  opts: { stride?: number; padding?: number } = {},
): Tensor {
  const w = param(ctx, `${path}.weight`);
  const bias = hasParam(ctx, `${path}.bias`) ? param(ctx, `${path}.bias`) : undefined;
  const stride = opts.stride ?? 1;
  const padding = opts.padding ?? 0;
  const y = G.conv2d(x, w, bias, { stride, padding });
  const [outF, inF, kh, kw] = w.shape as number[];
  if (!ctx.lora?.has(path, Math.max(kh, kw))) return y;
  return G.add(
    y,
    ctx.lora.convBranch(x, path, { inFeatures: inF, outFeatures: outF, kernel: [kh, kw], stride, padding }),
  );
}

export function groupNormLayer(
  ctx: ModelContext,
  path: string,
  x: Tensor,
  groups: number,
  eps: number,
): Tensor {
  return G.groupNorm(x, param(ctx, `${path}.weight`), param(ctx, `${path}.bias`), groups, eps);
}

export function layerNormLayer(ctx: ModelContext, path: string, x: Tensor, eps: number): Tensor {
  return G.layerNorm(x, param(ctx, `${path}.weight`), param(ctx, `${path}.bias`), eps);
}
