// The SD 1.x UNet (diffusers' UNet2DConditionModel with CrossAttn down/up blocks) on the
// graph IR. Module paths mirror the checkpoint's keys. The graph can expose the
// head-averaged cross-attention probabilities of chosen layers as outputs.

import type { UNetConfig } from '../architecture.ts';
import type { Dim, Tensor } from '../graph/index.ts';
import * as G from '../graph/index.ts';
import { attend } from './attention.ts';
import { convLayer, groupNormLayer, layerNormLayer, linearLayer, type ModelContext } from './layers.ts';

export interface UNetInputs {
  /** [B, in_channels, H, W] */
  sample: Tensor;
  /** [B] float timesteps (one per sample) */
  timestep: Tensor;
  /** [B, 77, cross_attention_dim] */
  context: Tensor;
}

export interface UNetOptions {
  /**
   * Which cross-attention layers (`…transformer_blocks.0.attn2`) expose their head-averaged
   * probabilities, given the layer's token count (as diffusers' attention processors let a
   * caller store chosen layers' maps): all, or a choice.
   */
  captureAttention?: 'all' | ((path: string, tokens: Dim) => boolean);
}

export interface UNetOutputs {
  /** predicted noise [B, out_channels, H, W] */
  noise: Tensor;
  /** head-averaged cross-attention probabilities [B, H·W, 77] by module path, in forward order */
  attention: Map<string, Tensor>;
}

/** Sinusoidal embedding computed in float32 as diffusers does (cos first when flipped). */
export function timestepEmbedding(t: Tensor, dim: number, flipSinToCos: boolean, freqShift: number): Tensor {
  const half = dim / 2;
  const f32 = Math.fround;
  const freqs = Array.from({ length: half }, (_, i) =>
    f32(Math.exp(f32(f32(f32(-Math.log(10000)) * i) / (half - freqShift)))),
  );
  const g = t.graph;
  const args = G.mul(G.unsqueeze(G.cast(t, 'float32'), 1), g.constant(freqs, [1, half], 'float32'));
  const [sin, cos] = [G.sin(args), G.cos(args)];
  return G.concat(flipSinToCos ? [cos, sin] : [sin, cos], 1);
}

function headsFor(config: UNetConfig, level: number): number {
  const h = config.attention_head_dim;
  return Array.isArray(h) ? h[level] : h;
}

export function buildUNet(
  ctx: ModelContext,
  config: UNetConfig,
  inputs: UNetInputs,
  options: UNetOptions = {},
): UNetOutputs {
  const attention = new Map<string, Tensor>();
  const groups = config.norm_num_groups;
  const eps = config.norm_eps;
  const batch = inputs.sample.shape[0];
  const choice = options.captureAttention;
  const captures = (path: string, tokens: Dim): boolean =>
    choice === 'all' || (typeof choice === 'function' && choice(path, tokens));

  const resnet = (path: string, x: Tensor, temb: Tensor): Tensor => {
    let h = G.silu(groupNormLayer(ctx, `${path}.norm1`, x, groups, eps));
    h = convLayer(ctx, `${path}.conv1`, h, { padding: 1 });
    const t = linearLayer(ctx, `${path}.time_emb_proj`, G.silu(temb));
    h = G.add(h, G.unsqueeze(t, [2, 3]));
    h = G.silu(groupNormLayer(ctx, `${path}.norm2`, h, groups, eps));
    h = convLayer(ctx, `${path}.conv2`, h, { padding: 1 });
    const skip = ctx.weights.has(`${path}.conv_shortcut.weight`)
      ? convLayer(ctx, `${path}.conv_shortcut`, x)
      : x;
    return G.add(skip, h);
  };

  const attn = (path: string, x: Tensor, context: Tensor, heads: number): Tensor => {
    const q = linearLayer(ctx, `${path}.to_q`, x);
    const k = linearLayer(ctx, `${path}.to_k`, context);
    const v = linearLayer(ctx, `${path}.to_v`, context);
    const captured = context !== x && captures(path, x.shape[1]);
    const { out, probs } = attend(ctx.attention, q, k, v, heads, { probs: captured });
    if (probs) attention.set(path, probs);
    return linearLayer(ctx, `${path}.to_out.0`, out);
  };

  const transformer = (path: string, x: Tensor, heads: number): Tensor => {
    const [, c, h, w] = x.shape;
    let hs = groupNormLayer(ctx, `${path}.norm`, x, groups, 1e-6);
    hs = convLayer(ctx, `${path}.proj_in`, hs);
    hs = G.transpose(G.reshape(hs, [batch, c, -1]), [0, 2, 1]); // [B, HW, C]
    for (let i = 0; i < config.transformer_layers_per_block; i++) {
      const block = `${path}.transformer_blocks.${i}`;
      const n1 = layerNormLayer(ctx, `${block}.norm1`, hs, 1e-5);
      hs = G.add(hs, attn(`${block}.attn1`, n1, n1, heads));
      hs = G.add(
        hs,
        attn(`${block}.attn2`, layerNormLayer(ctx, `${block}.norm2`, hs, 1e-5), inputs.context, heads),
      );
      const projected = linearLayer(
        ctx,
        `${block}.ff.net.0.proj`,
        layerNormLayer(ctx, `${block}.norm3`, hs, 1e-5),
      );
      const [value, gate] = G.split(projected, -1, 2);
      hs = G.add(hs, linearLayer(ctx, `${block}.ff.net.2`, G.mul(value, G.gelu(gate))));
    }
    hs = G.reshape(G.transpose(hs, [0, 2, 1]), [batch, c, h, w]);
    return G.add(convLayer(ctx, `${path}.proj_out`, hs), x);
  };

  // time embedding
  const tEmb = timestepEmbedding(
    inputs.timestep,
    config.block_out_channels[0],
    config.flip_sin_to_cos,
    config.freq_shift,
  );
  const tCast = G.cast(tEmb, ctx.dtype);
  const temb = linearLayer(
    ctx,
    'time_embedding.linear_2',
    G.silu(linearLayer(ctx, 'time_embedding.linear_1', tCast)),
  );

  let h = convLayer(ctx, 'conv_in', inputs.sample, { padding: 1 });
  const skips: Tensor[] = [h];
  config.down_block_types.forEach((type, level) => {
    const cross = type.startsWith('CrossAttn');
    for (let j = 0; j < config.layers_per_block; j++) {
      h = resnet(`down_blocks.${level}.resnets.${j}`, h, temb);
      if (cross) h = transformer(`down_blocks.${level}.attentions.${j}`, h, headsFor(config, level));
      skips.push(h);
    }
    if (level < config.down_block_types.length - 1) {
      h = convLayer(ctx, `down_blocks.${level}.downsamplers.0.conv`, h, {
        stride: 2,
        padding: config.downsample_padding,
      });
      skips.push(h);
    }
  });

  h = resnet('mid_block.resnets.0', h, temb);
  h = transformer('mid_block.attentions.0', h, headsFor(config, config.block_out_channels.length - 1));
  h = resnet('mid_block.resnets.1', h, temb);

  const levels = config.up_block_types.length;
  config.up_block_types.forEach((type, i) => {
    const cross = type.startsWith('CrossAttn');
    const level = levels - 1 - i;
    for (let j = 0; j < config.layers_per_block + 1; j++) {
      h = G.concat([h, skips.pop()!], 1);
      h = resnet(`up_blocks.${i}.resnets.${j}`, h, temb);
      if (cross) h = transformer(`up_blocks.${i}.attentions.${j}`, h, headsFor(config, level));
    }
    if (i < levels - 1)
      h = convLayer(ctx, `up_blocks.${i}.upsamplers.0.conv`, G.upsampleNearest2x(h), { padding: 1 });
  });

  h = G.silu(groupNormLayer(ctx, 'conv_norm_out', h, groups, eps));
  const noise = convLayer(ctx, 'conv_out', h, { padding: 1 });
  return { noise, attention };
}
