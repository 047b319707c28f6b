// The tensors of an SD 1.x checkpoint in the LDM single-file key layout (model.diffusion_model.*,
// cond_stage_model.transformer.text_model.*, first_stage_model.* with encoder and decoder), and
// seeded values for them as PyTorch's default initialisation draws them (uniform ±1/√fan_in for
// Linear and Conv, norms 1/0, embeddings N(0, 0.02)), so activations stay finite through the
// whole network. Values are counter-based: any chunk of a tensor is drawn on its own.

import { createHash } from 'node:crypto';
import type { ClipTextConfig, UNetConfig, VaeConfig } from '../architecture.ts';
import { portableCosSinTurn, portableLog } from '../schedulers/noise.ts';

/** How a tensor's values are drawn. */
export type Init =
  | { kind: 'uniform'; bound: number }
  | { kind: 'normal'; std: number }
  | { kind: 'constant'; value: number };

export interface TensorPlan {
  name: string;
  shape: number[];
  init: Init;
}

export type ModelPart = 'unet' | 'textEncoder' | 'vae';

const PREFIX: Record<ModelPart, string> = {
  unet: 'model.diffusion_model.',
  textEncoder: 'cond_stage_model.transformer.',
  vae: 'first_stage_model.',
};

// ---------------------------------------------------------------- the tensor list

/** Collects a network's tensors with PyTorch's default initialisation per layer kind. */
class Layers {
  readonly tensors: TensorPlan[] = [];

  constructor(private readonly prefix: string) {}

  /** nn.Linear(in, out): weight [out, in], bias [out], both uniform ±1/√in. */
  linear(path: string, inF: number, outF: number, bias = true): void {
    const bound = 1 / Math.sqrt(inF);
    this.add(`${path}.weight`, [outF, inF], { kind: 'uniform', bound });
    if (bias) this.add(`${path}.bias`, [outF], { kind: 'uniform', bound });
  }

  /** nn.Conv2d(in, out, k): weight [out, in, k, k], bias [out], both uniform ±1/√(in·k²). */
  conv(path: string, inC: number, outC: number, k: number): void {
    const bound = 1 / Math.sqrt(inC * k * k);
    this.add(`${path}.weight`, [outC, inC, k, k], { kind: 'uniform', bound });
    this.add(`${path}.bias`, [outC], { kind: 'uniform', bound });
  }

  /** LayerNorm / GroupNorm affine parameters: weight 1, bias 0. */
  norm(path: string, channels: number): void {
    this.add(`${path}.weight`, [channels], { kind: 'constant', value: 1 });
    this.add(`${path}.bias`, [channels], { kind: 'constant', value: 0 });
  }

  embedding(path: string, count: number, width: number): void {
    this.add(`${path}.weight`, [count, width], { kind: 'normal', std: 0.02 });
  }

  private add(name: string, shape: number[], init: Init): void {
    this.tensors.push({ name: this.prefix + name, shape, init });
  }
}

function headsOf(config: UNetConfig, level: number): number {
  const h = config.attention_head_dim;
  return Array.isArray(h) ? h[level] : h;
}

/** The SD 1.x UNet in LDM naming (openaimodel.py's UNetModel). */
export function unetTensors(config: UNetConfig): TensorPlan[] {
  const t = new Layers(PREFIX.unet);
  const boc = config.block_out_channels;
  const L = config.layers_per_block;
  const levels = boc.length;
  const temb = 4 * boc[0];
  const ctxDim = config.cross_attention_dim;
  if (config.use_linear_projection)
    throw new RangeError('SD 1.x uses 1×1 conv projections in its transformers');
  for (let i = 0; i < levels; i++) {
    if (!Number.isInteger(boc[i] / headsOf(config, i))) {
      throw new RangeError(`${boc[i]} channels do not split into ${headsOf(config, i)} heads`);
    }
  }

  const resnet = (p: string, inC: number, outC: number) => {
    t.norm(`${p}.in_layers.0`, inC);
    t.conv(`${p}.in_layers.2`, inC, outC, 3);
    t.linear(`${p}.emb_layers.1`, temb, outC);
    t.norm(`${p}.out_layers.0`, outC);
    t.conv(`${p}.out_layers.3`, outC, outC, 3);
    if (inC !== outC) t.conv(`${p}.skip_connection`, inC, outC, 1);
  };
  const transformer = (p: string, c: number) => {
    t.norm(`${p}.norm`, c);
    t.conv(`${p}.proj_in`, c, c, 1);
    for (let b = 0; b < config.transformer_layers_per_block; b++) {
      const block = `${p}.transformer_blocks.${b}`;
      for (const [attn, kvDim] of [
        ['attn1', c],
        ['attn2', ctxDim],
      ] as const) {
        t.linear(`${block}.${attn}.to_q`, c, c, false);
        t.linear(`${block}.${attn}.to_k`, kvDim, c, false);
        t.linear(`${block}.${attn}.to_v`, kvDim, c, false);
        t.linear(`${block}.${attn}.to_out.0`, c, c);
      }
      t.linear(`${block}.ff.net.0.proj`, c, 8 * c); // GEGLU: value and gate halves
      t.linear(`${block}.ff.net.2`, 4 * c, c);
      for (const n of ['norm1', 'norm2', 'norm3']) t.norm(`${block}.${n}`, c);
    }
    t.conv(`${p}.proj_out`, c, c, 1);
  };
  const downAttention = config.down_block_types.map((b) => b.startsWith('CrossAttn'));
  const upAttention = config.up_block_types.map((b) => b.startsWith('CrossAttn'));

  t.linear('time_embed.0', boc[0], temb);
  t.linear('time_embed.2', temb, temb);
  t.conv('input_blocks.0.0', config.in_channels, boc[0], 3);
  const skips = [boc[0]];
  let ch = boc[0];
  let k = 1;
  for (let i = 0; i < levels; i++) {
    for (let j = 0; j < L; j++, k++) {
      resnet(`input_blocks.${k}.0`, ch, boc[i]);
      ch = boc[i];
      if (downAttention[i]) transformer(`input_blocks.${k}.1`, ch);
      skips.push(ch);
    }
    if (i < levels - 1) {
      t.conv(`input_blocks.${k}.0.op`, ch, ch, 3);
      skips.push(ch);
      k++;
    }
  }
  resnet('middle_block.0', ch, ch);
  transformer('middle_block.1', ch);
  resnet('middle_block.2', ch, ch);
  k = 0;
  for (let i = 0; i < levels; i++) {
    const out = boc[levels - 1 - i];
    for (let j = 0; j <= L; j++, k++) {
      resnet(`output_blocks.${k}.0`, ch + skips.pop()!, out);
      ch = out;
      if (upAttention[i]) transformer(`output_blocks.${k}.1`, ch);
      if (j === L && i < levels - 1) t.conv(`output_blocks.${k}.${upAttention[i] ? 2 : 1}.conv`, ch, ch, 3);
    }
  }
  t.norm('out.0', ch);
  t.conv('out.2', ch, config.out_channels, 3);
  return t.tensors;
}

/** CLIP's text tower (transformers' CLIPTextModel) under the LDM prefix. */
export function textEncoderTensors(config: ClipTextConfig): TensorPlan[] {
  const t = new Layers(`${PREFIX.textEncoder}text_model.`);
  const c = config.hidden_size;
  t.embedding('embeddings.token_embedding', config.vocab_size, c);
  t.embedding('embeddings.position_embedding', config.max_position_embeddings, c);
  for (let i = 0; i < config.num_hidden_layers; i++) {
    const p = `encoder.layers.${i}`;
    for (const proj of ['q_proj', 'k_proj', 'v_proj', 'out_proj']) t.linear(`${p}.self_attn.${proj}`, c, c);
    t.norm(`${p}.layer_norm1`, c);
    t.linear(`${p}.mlp.fc1`, c, config.intermediate_size);
    t.linear(`${p}.mlp.fc2`, config.intermediate_size, c);
    t.norm(`${p}.layer_norm2`, c);
  }
  t.norm('final_layer_norm', c);
  return t.tensors;
}

/** The KL autoencoder (LDM's AutoencoderKL), encoder included; attention projections are 1×1 convs. */
export function vaeTensors(config: VaeConfig): TensorPlan[] {
  const t = new Layers(PREFIX.vae);
  const boc = config.block_out_channels;
  const L = config.layers_per_block;
  const levels = boc.length;
  const top = boc[levels - 1];
  const z = config.latent_channels;

  const resnet = (p: string, inC: number, outC: number) => {
    t.norm(`${p}.norm1`, inC);
    t.conv(`${p}.conv1`, inC, outC, 3);
    t.norm(`${p}.norm2`, outC);
    t.conv(`${p}.conv2`, outC, outC, 3);
    if (inC !== outC) t.conv(`${p}.nin_shortcut`, inC, outC, 1);
  };
  const mid = (side: string) => {
    resnet(`${side}.mid.block_1`, top, top);
    t.norm(`${side}.mid.attn_1.norm`, top);
    for (const proj of ['q', 'k', 'v', 'proj_out']) t.conv(`${side}.mid.attn_1.${proj}`, top, top, 1);
    resnet(`${side}.mid.block_2`, top, top);
  };

  t.conv('encoder.conv_in', config.in_channels, boc[0], 3);
  let ch = boc[0];
  for (let i = 0; i < levels; i++) {
    for (let j = 0; j < L; j++) {
      resnet(`encoder.down.${i}.block.${j}`, ch, boc[i]);
      ch = boc[i];
    }
    if (i < levels - 1) t.conv(`encoder.down.${i}.downsample.conv`, ch, ch, 3);
  }
  mid('encoder');
  t.norm('encoder.norm_out', top);
  t.conv('encoder.conv_out', top, 2 * z, 3);
  t.conv('quant_conv', 2 * z, 2 * z, 1);
  t.conv('post_quant_conv', z, z, 1);

  t.conv('decoder.conv_in', z, top, 3);
  mid('decoder');
  ch = top;
  for (let i = levels - 1; i >= 0; i--) {
    for (let j = 0; j <= L; j++) {
      resnet(`decoder.up.${i}.block.${j}`, ch, boc[i]);
      ch = boc[i];
    }
    if (i > 0) t.conv(`decoder.up.${i}.upsample.conv`, ch, ch, 3);
  }
  t.norm('decoder.norm_out', ch);
  t.conv('decoder.conv_out', ch, config.out_channels, 3);
  return t.tensors;
}

export function parameterCount(tensors: readonly TensorPlan[]): number {
  return tensors.reduce((sum, t) => sum + t.shape.reduce((a, b) => a * b, 1), 0);
}

// ---------------------------------------------------------------- values

/** lowbias32 (Wellons): a counter-based hash, so any chunk of a tensor is drawn independently. */
function hash32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

/** A per-tensor key from the seed and the tensor's name, so values do not depend on write order. */
export function tensorKey(seed: number, name: string): number {
  const digest = createHash('sha256').update(`${seed}\0${name}`).digest();
  return digest.readUInt32LE(0);
}

/** Uniform in [0, 1) from element `i` of stream `key` (53 bits from two hashes). */
function uniform(key: number, i: number): number {
  const a = hash32((key + Math.imul(2 * i, 0x9e3779b9)) >>> 0);
  const b = hash32((key ^ 0x5bd1e995) + Math.imul(2 * i + 1, 0x9e3779b9));
  return ((a >>> 5) * 2 ** 26 + (b >>> 6)) / 2 ** 53;
}

/** Fills `out` with elements [start, start + out.length) of a tensor's values. */
export function fillValues(out: Float32Array, init: Init, key: number, start: number): void {
  const n = out.length;
  if (init.kind === 'constant') {
    out.fill(init.value);
    return;
  }
  if (init.kind === 'uniform') {
    const scale = 2 * init.bound;
    for (let i = 0; i < n; i++) {
      // 24 bits are all a float32 keeps; one hash per value keeps 1B values fast
      const u = hash32((key + Math.imul(start + i, 0x9e3779b9)) >>> 0) >>> 8;
      out[i] = (u * 2 ** -24 - 0.5) * scale;
    }
    return;
  }
  // Box–Muller on pair p = ⌊index / 2⌋ with the portable log/cos/sin, so any worker agrees
  for (let i = 0; i < n; i++) {
    const index = start + i;
    const p = index >>> 1;
    const r = Math.sqrt(-2 * portableLog(1 - uniform(key, 2 * p)));
    const [c, s] = portableCosSinTurn(uniform(key, 2 * p + 1));
    out[i] = init.std * r * (index & 1 ? s : c);
  }
}
