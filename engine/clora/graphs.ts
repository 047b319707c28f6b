// CLoRA's graphs on the UNet: the denoising pass that also returns the aggregated maps,
// the guidance pass that returns maps, contrastive loss and ∂loss/∂latent in one run, and
// the maps' VJP that serves guidance split into chunks of branches.
// The method owns which layers it reads (those at a quarter of the latent size) and how.

import { type Dim, dimDiv, dimEq, dimMul } from '../graph/dim.ts';
import type { Tensor } from '../graph/index.ts';
import * as G from '../graph/index.ts';
import { type CompiledNetwork, type ModelOptions, toF32, unetGraph } from '../models/compiled.ts';
import type { Checkpoint } from '../weights/checkpoint.ts';
import { contrastiveLoss, groupInputs } from './loss.ts';

/** CLoRA reads the cross-attention maps at a quarter of the latent size (16×16 at 512²). */
export const ATTENTION_DOWNSCALE = 4;

/** True for layers at (H/4)×(W/4) tokens: the ones CLoRA averages into its maps. */
export function isAggregateLayer(tokens: Dim, sample: Tensor): boolean {
  const [, , h, w] = sample.shape;
  return dimEq(tokens, dimMul(dimDiv(h, ATTENTION_DOWNSCALE), dimDiv(w, ATTENTION_DOWNSCALE)));
}

const aggregateLayers = (_path: string, tokens: Dim, sample: Tensor) => isAggregateLayer(tokens, sample);

/** Mean of the head-averaged maps of the aggregate layers: [B, HW/16, 77]. */
function aggregate(attention: Map<string, Tensor>): Tensor {
  const layers = [...attention.values()];
  if (layers.length === 0)
    throw new Error('the UNet has no cross-attention layer at a quarter of the latent size');
  return G.mul(
    layers.reduce((acc, t) => G.add(acc, t)),
    1 / layers.length,
  );
}

/**
 * A gradient graph's convolutions read each weight twice (Conv forwards, ConvTranspose in
 * the VJP): onnxruntime's blocked layout would keep a second, reordered copy of every one.
 */
const gradientGraph = (o: ModelOptions): ModelOptions => ({ ...o, blockedLayout: false });

/**
 * The denoising UNet with CLoRA's maps: sample, timestep, context → noise and the
 * aggregated maps (`maps`); `allAttention` adds every cross-attention layer's maps.
 */
export async function compileDenoiseUNet(
  ck: Checkpoint,
  o: ModelOptions & { allAttention?: boolean } = {},
): Promise<CompiledNetwork> {
  const { graph, slots } = denoiseGraph(ck, o);
  return { model: await G.compile(graph, o), slots };
}

function denoiseGraph(ck: Checkpoint, o: ModelOptions & { allAttention?: boolean }) {
  const { graph, slots, noise, attention, sample } = unetGraph(ck, 'unet_maps', {
    ...o,
    capture: o.allAttention ? 'all' : aggregateLayers,
  });
  const read = new Map([...attention].filter(([, t]) => isAggregateLayer(t.shape[1], sample)));
  graph.output('noise', toF32(noise)).output('maps', toF32(aggregate(read)));
  if (o.allAttention) for (const [path, t] of attention) graph.output(`attn.${path}`, toF32(t));
  return { graph, slots };
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
  const { graph, slots } = guidanceGraph(ck, o);
  return { model: await G.compile(graph, gradientGraph(o)), slots };
}

function guidanceGraph(ck: Checkpoint, o: ModelOptions & { temperature?: number; published?: boolean }) {
  const c = ck.unet.config;
  let latent: Tensor | undefined;
  const { graph, slots, noise, attention } = unetGraph(
    ck,
    `unet_guidance${o.published ? '_published' : ''}`,
    {
      ...o,
      capture: aggregateLayers,
      sample: (g, batch) => {
        latent = g.input('latent', 'float32', [1, c.in_channels, 'H', 'W']);
        return G.expand(latent, [batch, c.in_channels, latent.shape[2], latent.shape[3]]);
      },
    },
  );
  let maps = toF32(aggregate(attention));
  if (o.published) {
    const [uncondMaps, condMaps] = G.split(maps, 0, 2);
    maps = G.mul(G.add(uncondMaps, condMaps), 0.5);
  }
  const { loss } = contrastiveLoss(maps, groupInputs(maps), o.temperature ?? 0.5);
  const [grad] = G.grad([loss], [latent!]);
  graph.output('loss', loss).output('grad', grad).output('maps', maps);
  if (o.published) graph.output('noise', toF32(noise));
  return { graph, slots };
}

/**
 * The guidance pass for one chunk of branches when all of them do not fit one run. The loss
 * couples every branch's maps, so a chunk cannot take its own loss; but ∂L/∂z =
 * Σ_b (∂maps_b/∂z)ᵀ ∂L/∂maps_b is a sum over branches. So the pipeline gets every branch's
 * maps first, takes L and ∂L/∂maps on the loss graph, and this graph returns one chunk's term:
 * latent [1, C, H, W] and a cotangent [B, H/4·W/4, 77] → grad [1, C, H, W] and the maps.
 */
function mapsVjpGraph(ck: Checkpoint, o: ModelOptions) {
  const c = ck.unet.config;
  let latent: Tensor | undefined;
  const { graph, slots, attention, sample } = unetGraph(ck, 'unet_maps_vjp', {
    ...o,
    capture: aggregateLayers,
    sample: (g, batch) => {
      latent = g.input('latent', 'float32', [1, c.in_channels, 'H', 'W']);
      return G.expand(latent, [batch, c.in_channels, latent.shape[2], latent.shape[3]]);
    },
  });
  const [, , h, w] = sample.shape;
  const cotangent = graph.input('maps_cotangent', 'float32', [
    'B',
    dimMul(dimDiv(h, ATTENTION_DOWNSCALE), dimDiv(w, ATTENTION_DOWNSCALE)),
    77,
  ]);
  const maps = toF32(aggregate(attention));
  // ⟨maps, cotangent⟩: its gradient w.r.t. the latent is the maps' VJP with the cotangent
  const [grad] = G.grad([G.reduceSum(G.mul(maps, cotangent))], [latent!]);
  graph.output('grad', grad).output('maps', maps);
  return { graph, slots };
}

export interface CLoraNetworks {
  denoise: CompiledNetwork;
  guidance: CompiledNetwork;
  mapsVjp: CompiledNetwork;
}

/**
 * The denoising UNet, the guidance pass and the maps' VJP in one session, over one copy of
 * the UNet's weights (G.compileBundle): three sessions would hold three copies, some 3 GiB
 * each for SD 1.5 in float32.
 */
export async function compileCLoraUNet(ck: Checkpoint, o: ModelOptions = {}): Promise<CLoraNetworks> {
  const parts = [denoiseGraph(ck, o), guidanceGraph(ck, o), mapsVjpGraph(ck, o)];
  const models = await G.compileBundle(
    `unet_clora${o.loraConvs ? '_locon' : ''}`,
    parts.map((p) => p.graph),
    gradientGraph(o),
  );
  const [denoise, guidance, mapsVjp] = models.map((model, i) => ({ model, slots: parts[i].slots }));
  return { denoise, guidance, mapsVjp };
}
