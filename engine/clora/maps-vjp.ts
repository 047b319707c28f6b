// The guidance pass for one chunk of branches when all of them do not fit one run. The
// contrastive loss couples every branch's maps, so a chunk cannot take its own loss; but
// ∂L/∂z = Σ_b (∂maps_b/∂z)ᵀ ∂L/∂maps_b is a sum over branches. So the pipeline gets every
// branch's maps first, takes L and ∂L/∂maps on the host-side loss graph, and this graph
// returns one chunk's term (∂maps/∂z)ᵀ·cotangent; the terms add up to the one-run gradient.

import { dimDiv, dimMul } from '../graph/dim.ts';
import type { Tensor } from '../graph/index.ts';
import * as G from '../graph/index.ts';
import { LoraSlots } from '../lora/gated.ts';
import type { CompiledNetwork, ModelOptions } from '../models/compiled.ts';
import type { ModelContext } from '../models/layers.ts';
import { buildUNet, isAggregateLayer } from '../models/unet.ts';
import type { Checkpoint } from '../weights/checkpoint.ts';

/**
 * latent [1, C, H, W] shared by B branches (context, timestep, LoRA gates) and a cotangent
 * [B, H/4·W/4, 77] for their aggregated maps → grad [1, C, H, W] = Σ_b (∂maps_b/∂latent)ᵀ cot_b.
 */
export async function compileMapsVjp(ck: Checkpoint, o: ModelOptions = {}): Promise<CompiledNetwork> {
  const g = new G.Graph(`unet_maps_vjp${o.loraConvs ? '_locon' : ''}`);
  const dtype = o.dtype ?? 'float32';
  const ctx: ModelContext = {
    graph: g,
    weights: ck.unet.weights,
    dtype,
    namespace: '',
    lora: o.lora ? new LoraSlots('unet', o.loraConvs ?? false) : undefined,
  };
  const c = ck.unet.config;
  const latent = g.input('latent', 'float32', [1, c.in_channels, 'H', 'W']);
  const timestep = g.input('timestep', 'float32', ['B']);
  const context = g.input('context', 'float32', ['B', 77, c.cross_attention_dim]);
  const [, , h, w] = latent.shape;
  const cotangent = g.input('maps_cotangent', 'float32', ['B', dimMul(dimDiv(h, 4), dimDiv(w, 4)), 77]);
  const sample = G.expand(latent, [context.shape[0], c.in_channels, h, w]);
  const { attention } = buildUNet(
    ctx,
    c,
    { sample: G.cast(sample, dtype), timestep, context: G.cast(context, dtype) },
    { captureAttention: 'aggregate' },
  );
  const layers: Tensor[] = [...attention.values()].filter((t) => isAggregateLayer(t.shape[1], sample));
  if (layers.length === 0)
    throw new Error('the UNet has no cross-attention layer at a quarter of the latent size');
  const maps = G.mul(
    G.cast(
      layers.reduce((acc, t) => G.add(acc, t)),
      'float32',
    ),
    1 / layers.length,
  );
  // ⟨maps, cotangent⟩: its gradient w.r.t. the latent is the VJP of the maps with the cotangent
  const [grad] = G.grad([G.reduceSum(G.mul(maps, cotangent))], [latent]);
  g.output('grad', grad).output('maps', maps);
  return { model: await G.compile(g, o), slots: ctx.lora };
}
