// The VAE decoder of SD 1.x (diffusers' AutoencoderKL.decode): latents / scaling_factor →
// post_quant_conv → decoder (mid block with single-head self-attention, up blocks,
// GroupNorm, SiLU, conv_out). Returns the raw image in about [-1, 1], unclamped.

import type { VaeConfig } from '../architecture.ts';
import type { Tensor } from '../graph/index.ts';
import * as G from '../graph/index.ts';
import { attend } from './attention.ts';
import { convLayer, groupNormLayer, linearLayer, type ModelContext } from './layers.ts';

const EPS = 1e-6;

export function buildVaeDecoder(ctx: ModelContext, config: VaeConfig, latents: Tensor): Tensor {
  const groups = config.norm_num_groups;
  const batch = latents.shape[0];

  const resnet = (path: string, x: Tensor): Tensor => {
    let h = convLayer(ctx, `${path}.conv1`, G.silu(groupNormLayer(ctx, `${path}.norm1`, x, groups, EPS)), {
      padding: 1,
    });
    h = convLayer(ctx, `${path}.conv2`, G.silu(groupNormLayer(ctx, `${path}.norm2`, h, groups, EPS)), {
      padding: 1,
    });
    const skip = ctx.weights.has(`${path}.conv_shortcut.weight`)
      ? convLayer(ctx, `${path}.conv_shortcut`, x)
      : x;
    return G.add(skip, h);
  };

  const attention = (path: string, x: Tensor): Tensor => {
    const [, c, h, w] = x.shape;
    const normed = groupNormLayer(ctx, `${path}.group_norm`, x, groups, EPS);
    const tokens = G.transpose(G.reshape(normed, [batch, c, -1]), [0, 2, 1]);
    const q = linearLayer(ctx, `${path}.to_q`, tokens);
    const k = linearLayer(ctx, `${path}.to_k`, tokens);
    const v = linearLayer(ctx, `${path}.to_v`, tokens);
    const out = linearLayer(ctx, `${path}.to_out.0`, attend(ctx.attention, q, k, v, 1).out);
    return G.add(G.reshape(G.transpose(out, [0, 2, 1]), [batch, c, h, w]), x);
  };

  let h = G.mul(latents, 1 / config.scaling_factor);
  h = convLayer(ctx, 'post_quant_conv', h);
  h = convLayer(ctx, 'decoder.conv_in', h, { padding: 1 });
  h = resnet('decoder.mid_block.resnets.0', h);
  h = attention('decoder.mid_block.attentions.0', h);
  h = resnet('decoder.mid_block.resnets.1', h);
  const levels = config.block_out_channels.length;
  for (let i = 0; i < levels; i++) {
    for (let j = 0; j < config.layers_per_block + 1; j++)
      h = resnet(`decoder.up_blocks.${i}.resnets.${j}`, h);
    if (i < levels - 1)
      h = convLayer(ctx, `decoder.up_blocks.${i}.upsamplers.0.conv`, G.upsampleNearest2x(h), { padding: 1 });
  }
  h = G.silu(groupNormLayer(ctx, 'decoder.conv_norm_out', h, groups, EPS));
  return convLayer(ctx, 'decoder.conv_out', h, { padding: 1 });
}
