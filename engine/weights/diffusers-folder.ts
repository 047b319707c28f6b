// A diffusers pipeline folder: model_index.json, unet/, text_encoder/, vae/ (config.json plus
// safetensors weights, possibly sharded or fp16 variants), scheduler/ and tokenizer/.

import { existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import {
  type ClipTextConfig,
  parseConfig,
  SD15_TEXT_ENCODER,
  SD15_UNET,
  SD15_VAE,
  type UNetConfig,
  type VaeConfig,
} from '../architecture.ts';
import type { Checkpoint } from './checkpoint.ts';
import { familyByContextWidth, familyByTextWidth, SD15_SCHEDULER_CONFIG, wrongFamily } from './family.ts';
import { pickledFileProblem, SafetensorsFile, WeightsError } from './safetensors.ts';
import { MappedWeightSet, type WeightSource } from './weight-set.ts';

const CLIP_BUFFERS = new Set(['text_model.embeddings.position_ids']);

export function openDiffusersFolder(dir: string, tokenizerDir: () => string): Checkpoint {
  const index = join(dir, 'model_index.json');
  if (existsSync(index)) {
    const pipeline = readJson(index);
    const cls = String(pipeline._class_name ?? '');
    if (/XL/.test(cls) || 'text_encoder_2' in pipeline) {
      throw wrongFamily(dir, 'SDXL', `model_index.json names ${cls || 'a second text encoder'}`);
    }
  } else if (!existsSync(join(dir, 'unet'))) {
    throw new WeightsError(
      dir,
      'is a folder but not a diffusers checkpoint (no model_index.json, no unet/); give a diffusers folder or a .safetensors file',
    );
  }

  const files: SafetensorsFile[] = [];
  try {
    const unet = component(dir, 'unet', 'diffusion_pytorch_model', files);
    const text = component(dir, 'text_encoder', 'model', files);
    const vae = component(dir, 'vae', 'diffusion_pytorch_model', files);
    for (const name of CLIP_BUFFERS) text.sources.delete(name);

    const unetConfig = parseConfig<UNetConfig>(SD15_UNET, unet.raw);
    const textConfig = parseConfig<ClipTextConfig>(SD15_TEXT_ENCODER, text.raw);
    const vaeConfig = parseConfig<VaeConfig>(SD15_VAE, vae.raw);
    if (unet.raw.addition_embed_type === 'text_time') {
      throw wrongFamily(dir, 'SDXL', 'its UNet takes text_time embeddings');
    }
    const byContext = familyByContextWidth(unetConfig.cross_attention_dim);
    if (byContext !== 'SD 1.x') {
      throw wrongFamily(
        dir,
        byContext,
        `its UNet cross-attends to ${unetConfig.cross_attention_dim}-wide text embeddings`,
      );
    }
    const byText = familyByTextWidth(textConfig.hidden_size);
    if (byText !== 'SD 1.x')
      throw wrongFamily(dir, byText, `its text encoder is ${textConfig.hidden_size} wide`);

    const unetWeights = new MappedWeightSet(`${dir} (UNet)`, unet.sources);
    const textWeights = new MappedWeightSet(`${dir} (text encoder)`, text.sources);
    const vaeWeights = new MappedWeightSet(`${dir} (VAE)`, vae.sources);
    const c = unetConfig.block_out_channels;
    expectShape(dir, 'unet', unetWeights, 'conv_in.weight', [c[0], unetConfig.in_channels, 3, 3]);
    expectShape(dir, 'text_encoder', textWeights, 'text_model.embeddings.token_embedding.weight', [
      textConfig.vocab_size,
      textConfig.hidden_size,
    ]);
    const v = vaeConfig.block_out_channels;
    expectShape(dir, 'vae', vaeWeights, 'decoder.conv_in.weight', [
      v[v.length - 1],
      vaeConfig.latent_channels,
      3,
      3,
    ]);

    const schedulerPath = join(dir, 'scheduler', 'scheduler_config.json');
    return {
      source: dir,
      layout: 'diffusers',
      unet: { config: unetConfig, weights: unetWeights },
      textEncoder: { config: textConfig, weights: textWeights },
      vae: { config: vaeConfig, weights: vaeWeights },
      schedulerConfig: existsSync(schedulerPath) ? readJson(schedulerPath) : { ...SD15_SCHEDULER_CONFIG },
      tokenizerDir: tokenizerDir(),
    };
  } catch (err) {
    for (const f of files) f.close();
    throw err;
  }
}

interface Component {
  raw: Record<string, unknown>;
  sources: Map<string, WeightSource>;
}

/** One network's config.json and weights (single, fp16-variant or sharded safetensors). */
function component(dir: string, sub: string, stem: string, opened: SafetensorsFile[]): Component {
  const folder = join(dir, sub);
  if (!existsSync(folder)) {
    throw new WeightsError(
      dir,
      `has no ${sub}/ folder; a diffusers SD 1.x folder needs unet/, text_encoder/ and vae/`,
    );
  }
  const raw = readJson(join(folder, 'config.json'));
  const sources = new Map<string, WeightSource>();
  const open = (path: string) => {
    const f = SafetensorsFile.open(path);
    opened.push(f);
    return f;
  };
  for (const variant of [stem, `${stem}.fp16`]) {
    const single = join(folder, `${variant}.safetensors`);
    if (existsSync(single)) {
      const file = open(single);
      for (const key of file.names()) sources.set(key, { file, key, shape: file.info(key).shape });
      return { raw, sources };
    }
    const shardIndex = join(folder, `${variant}.safetensors.index.json`);
    if (existsSync(shardIndex)) {
      const map = readJson(shardIndex).weight_map;
      if (typeof map !== 'object' || map === null) {
        throw new WeightsError(shardIndex, 'has no weight_map; the shard index is corrupt');
      }
      const shards = new Map<string, SafetensorsFile>();
      for (const [key, shard] of Object.entries(map as Record<string, unknown>)) {
        // Shard names are plain file names next to the index; anything else is refused.
        if (typeof shard !== 'string' || shard !== basename(shard)) {
          throw new WeightsError(
            shardIndex,
            `names shard ${JSON.stringify(shard)} for '${key}', not a file beside it`,
          );
        }
        let file = shards.get(shard);
        if (!file) {
          file = open(join(folder, shard));
          shards.set(shard, file);
        }
        if (!file.has(key))
          throw new WeightsError(file.path, `lacks '${key}', which the shard index puts there`);
        sources.set(key, { file, key, shape: file.info(key).shape });
      }
      return { raw, sources };
    }
  }
  for (const pickled of [`${stem}.bin`, `${stem}.fp16.bin`, `${stem}.ckpt`, `${stem}.pt`]) {
    const path = join(folder, pickled);
    if (existsSync(path)) throw new WeightsError(path, pickledFileProblem(path)!);
  }
  throw new WeightsError(folder, `has no weights (expected ${stem}.safetensors)`);
}

function expectShape(
  dir: string,
  sub: string,
  weights: MappedWeightSet,
  name: string,
  expected: number[],
): void {
  if (!weights.has(name)) {
    throw new WeightsError(dir, `${sub}/ lacks the weight '${name}'; the folder is incomplete or not SD 1.x`);
  }
  const actual = weights.shape(name);
  if (actual.join() !== expected.join()) {
    throw new WeightsError(
      dir,
      `${sub}/config.json implies '${name}' is [${expected}] but the weights have [${actual}]; ` +
        'config and weights do not belong together',
    );
  }
}

function readJson(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new WeightsError(path, 'is missing or unreadable');
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new WeightsError(path, `is not valid JSON (${(err as Error).message})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new WeightsError(path, 'is not a JSON object');
  }
  return value as Record<string, unknown>;
}
