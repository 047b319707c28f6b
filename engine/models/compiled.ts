// The sessions the engine runs, built from a checkpoint: text encoder, UNet (denoise and
// CLoRA guidance variants) and VAE decoder. Every graph speaks float32 at its boundary
// and casts inside when the compute dtype is float16, so callers never convert halves.

import { contrastiveLoss, groupInputs } from '../clora/loss.ts';
import type { CompiledModel, RunnerOptions, Tensor } from '../graph/index.ts';
import * as G from '../graph/index.ts';
import { LoraSlots, type LoraTarget } from '../lora/gated.ts';
import type { Checkpoint } from '../weights/checkpoint.ts';
import type { ModelContext } from './layers.ts';
import { buildTextEncoder } from './text-encoder.ts';
import { buildUNet, isAggregateLayer } from './unet.ts';
import { buildVaeDecoder } from './vae.ts';

export interface ModelOptions extends RunnerOptions {
  dtype?: 'float32' | 'float16';
  /** add gated LoRA branches to Linear and 1×1 conv layers */
  lora?: boolean;
  /** and to k×k convolutions too (LoCon) */
  loraConvs?: boolean;
}

export interface CompiledNetwork {
  model: CompiledModel;
  /** the LoRA slots the graph was built with, when it has any */
  slots?: LoraSlots;
}

function context(
  graph: G.Graph,
  weights: ModelContext['weights'],
  o: ModelOptions,
  target?: LoraTarget,
): ModelContext {
  return {
    graph,
    weights,
    dtype: o.dtype ?? 'float32',
    namespace: '',
    lora: o.lora && target ? new LoraSlots(target, o.loraConvs ?? false) : undefined,
  };
}

const toCompute = (ctx: ModelContext, t: Tensor) => G.cast(t, ctx.dtype);
const toF32 = (t: Tensor) => G.cast(t, 'float32');

async function finish(g: G.Graph, ctx: ModelContext, o: ModelOptions): Promise<CompiledNetwork> {
  return { model: await G.compile(g, o), slots: ctx.lora };
}

/** input_ids [B, 77] int64 → hidden [B, 77, C]. */
export async function compileTextEncoder(
  ck: Checkpoint,
  o: ModelOptions & { clipSkip?: number } = {},
): Promise<CompiledNetwork> {
  const g = new G.Graph('text_encoder');
  const ctx = context(g, ck.textEncoder.weights, o, 'text_encoder');
  const ids = g.input('input_ids', 'int64', ['B', ck.textEncoder.config.max_position_embeddings]);
  g.output('hidden', toF32(buildTextEncoder(ctx, ck.textEncoder.config, ids, { clipSkip: o.clipSkip })));
  return finish(g, ctx, o);
}

function unetInputs(g: G.Graph, ck: Checkpoint) {
  const c = ck.unet.config;
  return {
    sample: g.input('sample', 'float32', ['B', c.in_channels, 'H', 'W']),
    timestep: g.input('timestep', 'float32', ['B']),
    context: g.input('context', 'float32', ['B', 77, c.cross_attention_dim]),
  };
}

/** Mean of the head-averaged maps of the (H/4)×(W/4) cross-attention layers: [B, HW/16, 77]. */
function aggregate(attention: Map<string, Tensor>, sample: Tensor): Tensor {
  const layers = [...attention.entries()]
    .filter(([, t]) => isAggregateLayer(t.shape[1], sample))
    .map(([, t]) => t);
  if (layers.length === 0)
    throw new Error('the UNet has no cross-attention layer at a quarter of the latent size');
  const sum = layers.reduce((acc, t) => G.add(acc, t));
  return G.mul(sum, 1 / layers.length);
}

/**
 * The denoising UNet: sample, timestep, context → noise; optionally the aggregated
 * attention maps (`maps`) and every cross-attention layer's maps (`attn.<path>`).
 */
export async function compileUNet(
  ck: Checkpoint,
  o: ModelOptions & { maps?: boolean; allAttention?: boolean } = {},
): Promise<CompiledNetwork> {
  const { graph, slots } = unetGraph(ck, o);
  return { model: await G.compile(graph, o), slots };
}

/** The graph compileUNet compiles, for callers that inspect it (FLOP counts, tests). */
export function unetGraph(
  ck: Checkpoint,
  o: ModelOptions & { maps?: boolean; allAttention?: boolean } = {},
): { graph: G.Graph; slots?: LoraSlots } {
  const g = new G.Graph(`unet${o.maps ? '_maps' : ''}${o.loraConvs ? '_locon' : ''}`);
  const ctx = context(g, ck.unet.weights, o, 'unet');
  const inputs = unetInputs(g, ck);
  const { noise, attention } = buildUNet(
    ctx,
    ck.unet.config,
    {
      sample: toCompute(ctx, inputs.sample),
      timestep: inputs.timestep,
      context: toCompute(ctx, inputs.context),
    },
    { captureAttention: o.allAttention ? 'all' : o.maps ? 'aggregate' : undefined },
  );
  g.output('noise', toF32(noise));
  if (o.maps) g.output('maps', toF32(aggregate(attention, inputs.sample)));
  if (o.allAttention) for (const [path, t] of attention) g.output(`attn.${path}`, toF32(t));
  return { graph: g, slots: ctx.lora };
}

/**
 * CLoRA's guidance pass: one latent [1, C, H, W] shared by B branches (their contexts and
 * LoRA gates), the aggregated maps, the contrastive loss of the concept groups, and
 * ∂loss/∂latent — in one run. Only the UNet up to its last map-producing layer is emitted.
 *
 * `published` builds the published code's pass instead, for comparisons: both CFG halves of
 * every branch (context rows [uncond…, cond…]) through the whole UNet, maps averaged over
 * the halves, and the noise of this same pass as an output (the scheduler steps with it).
 */
export async function compileGuidance(
  ck: Checkpoint,
  o: ModelOptions & { temperature?: number; published?: boolean } = {},
): Promise<CompiledNetwork> {
  const g = new G.Graph(`unet_guidance${o.published ? '_published' : ''}${o.loraConvs ? '_locon' : ''}`);
  const ctx = context(g, ck.unet.weights, o, 'unet');
  const c = ck.unet.config;
  const latent = g.input('latent', 'float32', [1, c.in_channels, 'H', 'W']);
  const timestep = g.input('timestep', 'float32', ['B']);
  const contextIn = g.input('context', 'float32', ['B', 77, c.cross_attention_dim]);
  const sample = G.expand(latent, [contextIn.shape[0], c.in_channels, latent.shape[2], latent.shape[3]]);
  const { noise, attention } = buildUNet(
    ctx,
    c,
    { sample: toCompute(ctx, sample), timestep, context: toCompute(ctx, contextIn) },
    { captureAttention: 'aggregate' },
  );
  let maps = toF32(aggregate(attention, sample));
  if (o.published) {
    const [uncondMaps, condMaps] = G.split(maps, 0, 2);
    maps = G.mul(G.add(uncondMaps, condMaps), 0.5);
  }
  const { loss } = contrastiveLoss(maps, groupInputs(maps), o.temperature ?? 0.5);
  const [grad] = G.grad([loss], [latent]);
  g.output('loss', loss).output('grad', grad).output('maps', maps);
  if (o.published) g.output('noise', toF32(noise));
  return finish(g, ctx, o);
}

/** latents [B, 4, h, w] → image [B, 3, 8h, 8w], raw decoder output. */
export async function compileVaeDecoder(ck: Checkpoint, o: ModelOptions = {}): Promise<CompiledNetwork> {
  const g = new G.Graph('vae_decoder');
  const ctx = context(g, ck.vae.weights, o);
  const latents = g.input('latents', 'float32', ['B', ck.vae.config.latent_channels, 'h', 'w']);
  g.output('image', toF32(buildVaeDecoder(ctx, ck.vae.config, toCompute(ctx, latents))));
  return finish(g, ctx, o);
}
