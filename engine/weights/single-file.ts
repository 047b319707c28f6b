// One .safetensors file in the original LDM/CompVis layout (model.diffusion_model.*,
// cond_stage_model.transformer.*, first_stage_model.*): checks what it is, reads the
// architecture from tensor shapes and renames every tensor to diffusers/transformers names.

import {
  type ClipTextConfig,
  SD15_TEXT_ENCODER,
  SD15_UNET,
  SD15_VAE,
  type UNetConfig,
  type VaeConfig,
} from '../architecture.ts';
import type { Checkpoint } from './checkpoint.ts';
import { familyByContextWidth, SD1_ONLY, SD15_SCHEDULER_CONFIG, wrongFamily } from './family.ts';
import {
  indicesAfter,
  type KeyMap,
  type UNetLayout,
  unetKeyMap,
  unetLayoutFromLdm,
  vaeKeyMap,
  vaeLayoutFromLdm,
} from './ldm-layout.ts';
import { SafetensorsFile, WeightsError } from './safetensors.ts';
import { MappedWeightSet, type WeightSource } from './weight-set.ts';

const UNET = 'model.diffusion_model.';
const CLIP = 'cond_stage_model.transformer.';
const VAE = 'first_stage_model.';

/** Buffers some exports carry that are not weights. */
const CLIP_BUFFERS = new Set(['text_model.embeddings.position_ids']);

export function openSingleFile(source: string, tokenizerDir: () => string): Checkpoint {
  const file = SafetensorsFile.open(source);
  try {
    const names = file.names();
    refuseOtherKinds(source, names, file);
    const unetNames = stripped(names, UNET);
    const vaeNames = stripped(names, VAE);
    const clipNames = stripped(names, CLIP);

    const layout = unetLayoutFromLdm(unetNames);
    if (typeof layout === 'string') {
      throw new WeightsError(source, `has a UNet that is not laid out like SD 1.x (${layout}); ${SD1_ONLY}`);
    }
    const unet = convert(source, 'UNet', file, UNET, unetNames, unetKeyMap(layout));
    const vaeLayout = vaeLayoutFromLdm(vaeNames);
    if (vaeLayout.levels === 0 || vaeLayout.layersPerBlock < 1) {
      throw new WeightsError(source, `has no usable VAE decoder under ${VAE}decoder; ${SD1_ONLY}`);
    }
    const vae = convert(source, 'VAE', file, VAE, vaeNames, vaeKeyMap(vaeLayout));
    const text = textEncoderSources(file, clipNames);

    const shapeOf = (prefix: string) => (name: string) => {
      if (!file.has(prefix + name)) {
        throw new WeightsError(source, `lacks ${prefix}${name}; the file is incomplete or not SD 1.x`);
      }
      return file.info(prefix + name).shape;
    };
    const unetConfig = unetConfigFromShapes(shapeOf(UNET), unetNames, layout);
    const family = familyByContextWidth(unetConfig.cross_attention_dim);
    if (family !== 'SD 1.x') {
      throw wrongFamily(
        source,
        family,
        `its UNet cross-attends to ${unetConfig.cross_attention_dim}-wide text embeddings`,
      );
    }
    return {
      source,
      layout: 'single-file',
      unet: { config: unetConfig, weights: new MappedWeightSet(`${source} (UNet)`, unet) },
      textEncoder: {
        config: clipConfigFromShapes(shapeOf(CLIP), clipNames),
        weights: new MappedWeightSet(`${source} (text encoder)`, text),
      },
      vae: {
        config: vaeConfigFromShapes(shapeOf(VAE), vaeNames, vaeLayout.levels, vaeLayout.layersPerBlock),
        weights: new MappedWeightSet(`${source} (VAE)`, vae),
      },
      schedulerConfig: { ...SD15_SCHEDULER_CONFIG },
      tokenizerDir: tokenizerDir(),
    };
  } catch (err) {
    file.close();
    throw err;
  }
}

function stripped(names: readonly string[], prefix: string): Set<string> {
  return new Set(names.filter((n) => n.startsWith(prefix)).map((n) => n.slice(prefix.length)));
}

/** Refuses files that are something other than a full SD 1.x checkpoint, saying what they are. */
function refuseOtherKinds(source: string, names: readonly string[], file: SafetensorsFile): void {
  const any = (test: (n: string) => boolean) => names.some(test);
  const under = (prefix: string) => any((n) => n.startsWith(prefix));
  if (
    any(
      (n) =>
        /^lora_(unet|te\d?)_/.test(n) || /\.(lora_down|lora_up|lora_A|lora_B|hada_w1_a|lokr_w1)\b/.test(n),
    )
  ) {
    throw new WeightsError(
      source,
      'is a LoRA, not a base model; use it as a LoRA and give an SD 1.x checkpoint as the model',
    );
  }
  if (under('conditioner.embedders.'))
    throw wrongFamily(source, 'SDXL', 'it has conditioner.embedders text encoders');
  if (under(`${UNET}label_emb.`)) throw wrongFamily(source, 'SDXL', 'its UNet has a label embedding');
  if (under('cond_stage_model.model.'))
    throw wrongFamily(source, 'SD 2.x', 'it has an OpenCLIP text encoder');
  if (under(`${UNET}joint_blocks.`) || under('joint_blocks.'))
    throw wrongFamily(source, 'SD 3', 'it has MMDiT joint blocks');
  if (under(`${UNET}double_blocks.`) || under('double_blocks.'))
    throw wrongFamily(source, 'Flux', 'it has double blocks');
  if (!under(UNET)) {
    if (
      under(VAE) ||
      (under('encoder.') && under('decoder.')) ||
      under('decoder.up.') ||
      under('decoder.up_blocks.')
    ) {
      throw new WeightsError(
        source,
        'is a VAE on its own, not a full checkpoint; give an SD 1.x checkpoint as the model',
      );
    }
    if (under('down_blocks.') && under('conv_in.')) {
      throw new WeightsError(
        source,
        'is a diffusers UNet on its own; give the whole diffusers folder (the one with model_index.json) instead',
      );
    }
    if (under('text_model.'))
      throw new WeightsError(source, 'is a text encoder on its own, not a full checkpoint');
    throw new WeightsError(
      source,
      `has no UNet (no ${UNET}* tensors); it is not a Stable Diffusion checkpoint`,
    );
  }
  // Widths decide SD 2 / SDXL files that lack the telltale keys (pruned or re-saved ones).
  const toK = names.find((n) => n.startsWith(UNET) && n.endsWith('.attn2.to_k.weight'));
  if (toK) {
    const width = file.info(toK).shape[1];
    const family = familyByContextWidth(width);
    if (family !== 'SD 1.x')
      throw wrongFamily(source, family, `its UNet cross-attends to ${width}-wide text embeddings`);
  }
  if (!under(CLIP)) {
    throw new WeightsError(
      source,
      `has no CLIP text encoder (${CLIP}*); it is not a complete SD 1.x checkpoint`,
    );
  }
  if (!under(VAE)) {
    throw new WeightsError(source, `has no VAE (${VAE}*); it is not a complete SD 1.x checkpoint`);
  }
}

/** Renames one network's tensors through a key map; every tensor must map and every module be present. */
function convert(
  source: string,
  what: string,
  file: SafetensorsFile,
  prefix: string,
  names: ReadonlySet<string>,
  map: KeyMap,
): Map<string, WeightSource> {
  const out = new Map<string, WeightSource>();
  const unexpected: string[] = [];
  const used = new Set<string>();
  for (const name of names) {
    const converted = map.toDiffusers(name);
    if (!converted) {
      unexpected.push(prefix + name);
      continue;
    }
    used.add(map.ruleFor(name, 'ldm')!.rule.ldm);
    const key = prefix + name;
    let shape = file.info(key).shape;
    // LDM's VAE attention uses 1×1 convs where diffusers uses Linear layers: same values, fewer axes.
    if (converted.part === 'vae-attention' && shape.length === 4 && shape[2] === 1 && shape[3] === 1) {
      shape = shape.slice(0, 2);
    }
    if (out.has(converted.name)) {
      throw new WeightsError(
        source,
        `has two tensors for ${what} weight '${converted.name}'; the file is corrupt`,
      );
    }
    out.set(converted.name, { file, key, shape });
  }
  if (unexpected.length) {
    throw new WeightsError(
      source,
      `has ${what} tensors that SD 1.x does not have (${sample(unexpected)}); it is a different architecture`,
    );
  }
  const missing = map.rules.filter((r) => !used.has(r.ldm)).map((r) => prefix + r.ldm);
  if (missing.length) {
    throw new WeightsError(
      source,
      `lacks ${what} layers ${sample(missing)}; the file is incomplete or not SD 1.x`,
    );
  }
  return out;
}

function sample(list: readonly string[]): string {
  return list.length <= 4 ? list.join(', ') : `${list.slice(0, 4).join(', ')} and ${list.length - 4} more`;
}

function textEncoderSources(file: SafetensorsFile, names: ReadonlySet<string>): Map<string, WeightSource> {
  const out = new Map<string, WeightSource>();
  for (const name of names) {
    // Exports from older transformers lack the text_model. level.
    const target = name.startsWith('text_model.') ? name : `text_model.${name}`;
    if (CLIP_BUFFERS.has(target)) continue;
    out.set(target, { file, key: CLIP + name, shape: file.info(CLIP + name).shape });
  }
  return out;
}

type ShapeOf = (name: string) => number[];

export function unetConfigFromShapes(
  shape: ShapeOf,
  names: ReadonlySet<string>,
  layout: UNetLayout,
): UNetConfig {
  const L = layout.layersPerBlock;
  const levels = [...Array(layout.levels).keys()];
  const firstAttention = [...names].find((n) => /\.attn2\.to_k\.weight$/.test(n));
  const attentionRoot = firstAttention?.slice(0, firstAttention.indexOf('.transformer_blocks.'));
  const projIn = attentionRoot ? shape(`${attentionRoot}.proj_in.weight`) : [];
  return {
    ...SD15_UNET,
    in_channels: shape('input_blocks.0.0.weight')[1],
    out_channels: shape('out.2.weight')[0],
    block_out_channels: levels.map((i) => shape(`input_blocks.${1 + i * (L + 1)}.0.out_layers.3.weight`)[0]),
    down_block_types: layout.downAttention.map((a) => (a ? 'CrossAttnDownBlock2D' : 'DownBlock2D')),
    up_block_types: layout.upAttention.map((a) => (a ? 'CrossAttnUpBlock2D' : 'UpBlock2D')),
    layers_per_block: L,
    // SD 1.x always uses 8 heads, whatever the width (diffusers calls the head count attention_head_dim).
    attention_head_dim: 8,
    cross_attention_dim: firstAttention ? shape(firstAttention)[1] : SD15_UNET.cross_attention_dim,
    use_linear_projection: projIn.length === 2,
    transformer_layers_per_block: attentionRoot
      ? Math.max(1, indicesAfter(names, `${attentionRoot}.transformer_blocks.`).length)
      : 1,
  };
}

export function clipConfigFromShapes(shape: ShapeOf, names: ReadonlySet<string>): ClipTextConfig {
  const root = names.has('text_model.embeddings.token_embedding.weight') ? 'text_model.' : '';
  const [vocab, hidden] = shape(`${root}embeddings.token_embedding.weight`);
  return {
    ...SD15_TEXT_ENCODER,
    vocab_size: vocab,
    hidden_size: hidden,
    max_position_embeddings: shape(`${root}embeddings.position_embedding.weight`)[0],
    intermediate_size: shape(`${root}encoder.layers.0.mlp.fc1.weight`)[0],
    num_hidden_layers: indicesAfter(names, `${root}encoder.layers.`).length,
    num_attention_heads: clipHeads(hidden),
  };
}

/**
 * Head count is not visible in the weights. CLIP text towers use 64-wide heads (ViT-L: 768/12);
 * test-sized models narrower than 64 use 8-wide heads (transformers' tiny CLIPs: width 32, 4 heads).
 */
export function clipHeads(hidden: number): number {
  if (hidden >= 64 && hidden % 64 === 0) return hidden / 64;
  return Math.max(1, Math.floor(hidden / 8));
}

export function vaeConfigFromShapes(
  shape: ShapeOf,
  names: ReadonlySet<string>,
  levels: number,
  L: number,
): VaeConfig {
  return {
    ...SD15_VAE,
    in_channels: names.has('encoder.conv_in.weight')
      ? shape('encoder.conv_in.weight')[1]
      : SD15_VAE.in_channels,
    out_channels: shape('decoder.conv_out.weight')[0],
    latent_channels: shape('post_quant_conv.weight')[0],
    block_out_channels: [...Array(levels).keys()].map(
      (i) => shape(`decoder.up.${i}.block.${L}.conv2.weight`)[0],
    ),
    layers_per_block: L,
  };
}
