// The CLIP text encoder of SD 1.x (transformers' CLIPTextModel): token + position
// embeddings, pre-LayerNorm transformer layers with a causal mask and quick-GELU, and the
// final LayerNorm. Returns last_hidden_state, or an earlier layer's with clip skip.

import type { ClipTextConfig } from '../architecture.ts';
import type { Tensor } from '../graph/index.ts';
import * as G from '../graph/index.ts';
import { layerNormLayer, linearLayer, type ModelContext, param } from './layers.ts';

export interface TextEncoderOptions {
  /** layers to skip from the end (0 = the last layer's output, 1 = the one before, …) */
  clipSkip?: number;
}

export function buildTextEncoder(
  ctx: ModelContext,
  config: ClipTextConfig,
  inputIds: Tensor,
  options: TextEncoderOptions = {},
): Tensor {
  const seq = config.max_position_embeddings;
  const c = config.hidden_size;
  const heads = config.num_attention_heads;
  const headDim = c / heads;
  const eps = config.layer_norm_eps;
  const skip = options.clipSkip ?? 0;
  if (!Number.isInteger(skip) || skip < 0 || skip >= config.num_hidden_layers) {
    throw new RangeError(`clip skip must be between 0 and ${config.num_hidden_layers - 1}, got ${skip}`);
  }
  const g = ctx.graph;
  const batch = inputIds.shape[0];

  let h = G.gather(param(ctx, 'text_model.embeddings.token_embedding.weight'), inputIds, 0); // [B, 77, C]
  h = G.add(h, param(ctx, 'text_model.embeddings.position_embedding.weight'));

  // Additive causal mask: a token attends to itself and to earlier tokens only.
  const lowest = ctx.dtype === 'float16' ? -65504 : -3.4028234663852886e38;
  const mask = g.constant(
    Array.from({ length: seq * seq }, (_, i) => (i % seq > Math.floor(i / seq) ? lowest : 0)),
    [seq, seq],
    ctx.dtype,
  );

  const act = config.hidden_act === 'quick_gelu' ? G.quickGelu : (x: Tensor) => G.gelu(x);
  const layers = config.num_hidden_layers - skip;
  for (let i = 0; i < layers; i++) {
    const p = `text_model.encoder.layers.${i}`;
    const x = layerNormLayer(ctx, `${p}.layer_norm1`, h, eps);
    const q = G.splitHeads(
      G.mul(linearLayer(ctx, `${p}.self_attn.q_proj`, x), 1 / Math.sqrt(headDim)),
      heads,
    );
    const k = G.splitHeads(linearLayer(ctx, `${p}.self_attn.k_proj`, x), heads);
    const v = G.splitHeads(linearLayer(ctx, `${p}.self_attn.v_proj`, x), heads);
    const probs = G.softmax(G.add(G.matmul(q, G.transposeLast2(k)), mask), -1);
    const attn = G.reshape(G.mergeHeads(G.matmul(probs, v)), [batch, seq, c]);
    h = G.add(h, linearLayer(ctx, `${p}.self_attn.out_proj`, attn));
    const y = layerNormLayer(ctx, `${p}.layer_norm2`, h, eps);
    h = G.add(h, linearLayer(ctx, `${p}.mlp.fc2`, act(linearLayer(ctx, `${p}.mlp.fc1`, y))));
  }
  return layerNormLayer(ctx, 'text_model.final_layer_norm', h, eps);
}
