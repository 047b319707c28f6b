// The networks of a checkpoint as compiled sessions: text encoder, UNet and VAE decoder.
// Every graph speaks float32 at its boundary and casts inside when the compute dtype is
// float16, so callers never convert halves. What a method reads from inside the UNet
// (CLoRA's maps, its guidance gradient) is built by the method on unetGraph's hook.

import type { Dim } from '../graph/dim.ts';
import type { CompiledModel, RunnerOptions, Tensor } from '../graph/index.ts';
import * as G from '../graph/index.ts';
import { LoraSlots, type LoraTarget } from '../lora/gated.ts';
import type { Checkpoint } from '../weights/checkpoint.ts';
import { type AttentionKernel, attentionSettings } from './attention.ts';
import type { ModelContext } from './layers.ts';
import { buildTextEncoder } from './text-encoder.ts';
import { buildUNet, type UNetOutputs } from './unet.ts';
import { buildVaeDecoder } from './vae.ts';

export interface ModelOptions extends RunnerOptions {
  dtype?: 'float32' | 'float16';
  /** add gated LoRA branches to Linear and 1×1 conv layers */
  lora?: boolean;
  /** and to k×k convolutions too (LoCon) */
  loraConvs?: boolean;
  /** memory-efficient (default) or materialised attention */
  attention?: AttentionKernel;
  /** memory one attention chunk may take per sample (memory-efficient kernel) */
  attentionChunkBytes?: number;
}

export interface CompiledNetwork {
  model: CompiledModel;
  /** the LoRA slots the graph was built with, when it has any */
  slots?: LoraSlots;
}

function context(
  graph: G.Graph,
  ck: Checkpoint,
  weights: ModelContext['weights'],
  o: ModelOptions,
  target?: LoraTarget,
): ModelContext {
  const latent = ck.unet.config.sample_size;
  return {
    graph,
    weights,
    dtype: o.dtype ?? 'float32',
    namespace: '',
    lora: o.lora && target ? new LoraSlots(target, o.loraConvs ?? false) : undefined,
    attention: attentionSettings(
      { height: latent, width: latent },
      { kernel: o.attention, chunkBytesPerSample: o.attentionChunkBytes },
    ),
  };
}

export const toCompute = (ctx: ModelContext, t: Tensor) => G.cast(t, ctx.dtype);
export const toF32 = (t: Tensor) => G.cast(t, 'float32');

async function finish(g: G.Graph, ctx: ModelContext, o: ModelOptions): Promise<CompiledNetwork> {
  return { model: await G.compile(g, o), slots: ctx.lora };
}

/** input_ids [B, 77] int64 → hidden [B, 77, C]. */
export async function compileTextEncoder(
  ck: Checkpoint,
  o: ModelOptions & { clipSkip?: number } = {},
): Promise<CompiledNetwork> {
  const g = new G.Graph('text_encoder');
  const ctx = context(g, ck, ck.textEncoder.weights, o, 'text_encoder');
  const ids = g.input('input_ids', 'int64', ['B', ck.textEncoder.config.max_position_embeddings]);
  g.output('hidden', toF32(buildTextEncoder(ctx, ck.textEncoder.config, ids, { clipSkip: o.clipSkip })));
  return finish(g, ctx, o);
}

export interface UNetGraph extends UNetOutputs {
  graph: G.Graph;
  slots?: LoraSlots;
  /** the sample the UNet ran on, in float32 ([B, C, H, W]) */
  sample: Tensor;
}

/**
 * A UNet graph with inputs timestep [B] and context [B, 77, C]; the sample is the input
 * `sample` [B, C, H, W] unless `sample` builds it from other inputs (a shared latent, say).
 * `capture` chooses the cross-attention layers whose maps the caller reads.
 */
export function unetGraph(
  ck: Checkpoint,
  name: string,
  o: ModelOptions & {
    capture?: 'all' | ((path: string, tokens: Dim, sample: Tensor) => boolean);
    sample?: (g: G.Graph, batch: Dim) => Tensor;
  } = {},
): UNetGraph {
  const g = new G.Graph(`${name}${o.loraConvs ? '_locon' : ''}`);
  const ctx = context(g, ck, ck.unet.weights, o, 'unet');
  const c = ck.unet.config;
  const timestep = g.input('timestep', 'float32', ['B']);
  const contextIn = g.input('context', 'float32', ['B', 77, c.cross_attention_dim]);
  const sample = o.sample
    ? o.sample(g, contextIn.shape[0])
    : g.input('sample', 'float32', ['B', c.in_channels, 'H', 'W']);
  const capture = o.capture;
  const { noise, attention } = buildUNet(
    ctx,
    c,
    { sample: toCompute(ctx, sample), timestep, context: toCompute(ctx, contextIn) },
    {
      captureAttention:
        capture === 'all' ? 'all' : capture ? (path, tokens) => capture(path, tokens, sample) : undefined,
    },
  );
  return { graph: g, slots: ctx.lora, sample, noise, attention };
}

/** The denoising UNet: sample, timestep, context → noise; `allAttention` adds every cross-attention layer's maps (`attn.<path>`). */
export async function compileUNet(
  ck: Checkpoint,
  o: ModelOptions & { allAttention?: boolean } = {},
): Promise<CompiledNetwork> {
  const { graph, slots, noise, attention } = unetGraph(ck, 'unet', {
    ...o,
    capture: o.allAttention ? 'all' : undefined,
  });
  graph.output('noise', toF32(noise));
  for (const [path, t] of attention) graph.output(`attn.${path}`, toF32(t));
  return { model: await G.compile(graph, o), slots };
}

/** latents [B, 4, h, w] → image [B, 3, 8h, 8w], raw decoder output. */
export async function compileVaeDecoder(ck: Checkpoint, o: ModelOptions = {}): Promise<CompiledNetwork> {
  const g = new G.Graph('vae_decoder');
  const ctx = context(g, ck, ck.vae.weights, o);
  const latents = g.input('latents', 'float32', ['B', ck.vae.config.latent_channels, 'h', 'w']);
  g.output('image', toF32(buildVaeDecoder(ctx, ck.vae.config, toCompute(ctx, latents))));
  return finish(g, ctx, o);
}
