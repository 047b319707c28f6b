// npm run demo-model: a tiny random-weight model in SD 1.5's topology and two small kohya
// LoRAs, so a newcomer can watch the whole flow (command, queue, progress, image, masks,
// buttons) before downloading gigabytes. The pictures are noise: nothing was trained.
// Usage: npm run demo-model -- [--out demo] [--tokenizer <dir>] [--seed 0]
// The CLIP tokenizer (vocab.json, merges.txt) is copied, never downloaded: it defaults to
// the tiny-sd15 fixture's ($CLORA_FIXTURES/model/tokenizer, else ../shared beside the repo).

import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { isEntryPoint } from '../../engine/entry-point.ts';
import { bytesOf } from '../../engine/graph/dtype.ts';
import { readLora } from '../../engine/lora/file.ts';
import { SD15_TEXT_ENCODER, SD15_UNET, SD15_VAE } from '../../engine/models/config.ts';
import { type Checkpoint, openCheckpoint } from '../../engine/weights/checkpoint.ts';
import { fillValues } from '../../engine/weights/initial-weights.ts';
import { encodeSafetensors, type TensorToWrite } from '../../engine/weights/safetensors.ts';
import { defaultTokenizerDir } from '../../tools/make-random-model.ts';
import { type RandomModelSpec, verifyRandomModel, writeRandomModel } from '../../tools/random-model.ts';

/** SD 1.5's layout at the tiny-sd15 fixture's widths: megabytes, and seconds per picture on a CPU. */
export const DEMO_MODEL: RandomModelSpec = {
  unet: { ...SD15_UNET, block_out_channels: [32, 64, 64, 64], cross_attention_dim: 32 },
  textEncoder: {
    ...SD15_TEXT_ENCODER,
    hidden_size: 32,
    intermediate_size: 64,
    num_hidden_layers: 2,
    num_attention_heads: 4,
  },
  vae: { ...SD15_VAE, block_out_channels: [32, 32, 32, 64] },
  seed: 0,
};

/** The demo LoRAs: names match the /compose help's first example. */
export const DEMO_LORAS = [
  { name: 'tabby', trigger: 'tabby cat', tags: { 'tabby cat': 24, whiskers: 11, 'striped fur': 7 } },
  {
    name: 'plush-penguin',
    trigger: 'plush penguin',
    tags: { 'plush penguin': 20, 'felt toy': 9, stitches: 4 },
  },
] as const;

const RANK = 4;
const ALPHA = 2;
// Attention projections of the UNet and the text encoder: what most community LoRAs train.
const UNET_LAYER = /\.attn[12]\.(to_q|to_k|to_v|to_out\.0)\.weight$/;
const TEXT_LAYER = /\.self_attn\.(q_proj|k_proj|v_proj|out_proj)\.weight$/;

export interface DemoFiles {
  /** the checkpoint file to give MODEL_PATH; its tokenizer/ is beside it */
  modelPath: string;
  modelBytes: number;
  loraDir: string;
  loras: { name: string; path: string; trigger: string; layers: number }[];
}

/** Writes `<out>/model/` (checkpoint and tokenizer) and `<out>/loras/`, and checks both load. */
export function writeDemo(out: string, options: { tokenizerDir: string; seed?: number }): DemoFiles {
  const tokenizerDir = resolve(options.tokenizerDir);
  const missing = ['vocab.json', 'merges.txt'].filter((f) => !existsSync(join(tokenizerDir, f)));
  if (missing.length > 0) {
    throw new Error(
      `the demo model needs the CLIP tokenizer files (vocab.json, merges.txt), and ${tokenizerDir} lacks ${missing.join(' and ')}. ` +
        "Give a folder that has them with --tokenizer <dir>: any SD 1.5 checkpoint's tokenizer/ folder, " +
        'or the tiny-sd15 fixture’s model/tokenizer (set CLORA_FIXTURES to the fixture folder).',
    );
  }
  const spec = { ...DEMO_MODEL, seed: options.seed ?? DEMO_MODEL.seed };
  const model = writeRandomModel(join(out, 'model'), spec, { tokenizerDir });
  const ck = openCheckpoint(model.path);
  verifyRandomModel(ck, spec);

  const loraDir = join(out, 'loras');
  mkdirSync(loraDir, { recursive: true });
  const base = { unet: ck.unet.weights, textEncoder: ck.textEncoder.weights };
  const loras = DEMO_LORAS.map((lora, i) => {
    const path = join(loraDir, `${lora.name}.safetensors`);
    writeFileSync(path, demoLora(ck, spec.seed * 1000 + i + 1, lora.name, lora.tags));
    // The bot must take them as they are: read them back against this very model.
    const read = readLora(path, base);
    if (read.unmatched.length > 0)
      throw new Error(`${path}: ${read.unmatched.length} modules match no layer of the demo model`);
    return { name: lora.name, path, trigger: lora.trigger, layers: read.modules.length };
  });
  return { modelPath: model.path, modelBytes: model.bytes, loraDir, loras };
}

/** A rank-4 kohya LoRA on every attention projection, random factors, kohya's training record. */
function demoLora(
  ck: Checkpoint,
  seed: number,
  name: string,
  tags: Readonly<Record<string, number>>,
): Uint8Array {
  const tensors: TensorToWrite[] = [];
  const layers = [
    ...ck.unet.weights
      .names()
      .filter((n) => UNET_LAYER.test(n))
      .map((n) => ({ key: `lora_unet_${n}`, shape: ck.unet.weights.shape(n) })),
    ...ck.textEncoder.weights
      .names()
      .filter((n) => TEXT_LAYER.test(n))
      .map((n) => ({ key: `lora_te_${n}`, shape: ck.textEncoder.weights.shape(n) })),
  ];
  let stream = seed * 7919;
  const random = (count: number, init: Parameters<typeof fillValues>[1]) => {
    const values = new Float32Array(count);
    fillValues(values, init, stream++, 0);
    return bytesOf(values);
  };
  for (const { key, shape } of layers) {
    const module = key.slice(0, -'.weight'.length).replaceAll('.', '_');
    const [outF, inF] = shape;
    tensors.push(
      {
        name: `${module}.lora_down.weight`,
        dtype: 'F32',
        shape: [RANK, inF],
        data: random(RANK * inF, { kind: 'uniform', bound: 1 / Math.sqrt(inF) }),
      },
      {
        name: `${module}.lora_up.weight`,
        dtype: 'F32',
        shape: [outF, RANK],
        data: random(outF * RANK, { kind: 'normal', std: 0.05 }),
      },
      { name: `${module}.alpha`, dtype: 'F32', shape: [], data: bytesOf(Float32Array.of(ALPHA)) },
    );
  }
  return encodeSafetensors(tensors, {
    ss_output_name: name,
    ss_network_module: 'networks.lora',
    ss_network_dim: String(RANK),
    ss_network_alpha: String(ALPHA),
    ss_base_model_version: 'sd_v1',
    ss_sd_model_name: 'clora-demo-random',
    ss_tag_frequency: JSON.stringify({ [`10_${name}`]: tags }),
    'modelspec.title': `${name} (random demo LoRA)`,
  });
}

/** A path as the user should type it: relative to where they run npm, when it is inside. */
function shown(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : path;
}

function main(): void {
  const { values } = parseArgs({
    options: {
      out: { type: 'string', default: 'demo' },
      tokenizer: { type: 'string' },
      seed: { type: 'string', default: String(DEMO_MODEL.seed) },
    },
  });
  const seed = Number(values.seed);
  if (!Number.isSafeInteger(seed) || seed < 0)
    throw new Error(`--seed must be a whole number ≥ 0, got ${values.seed}`);
  const tokenizerDir = values.tokenizer ?? defaultTokenizerDir();
  if (values.tokenizer === undefined && !existsSync(tokenizerDir)) {
    throw new Error(
      'the demo model needs the CLIP tokenizer files (vocab.json, merges.txt), and none were given. ' +
        "Run `npm run demo-model -- --tokenizer <dir>` with any SD 1.5 checkpoint's tokenizer/ folder " +
        '(or set CLORA_FIXTURES to the tiny-sd15 fixture folder).',
    );
  }
  const t0 = performance.now();
  const demo = writeDemo(resolve(values.out), { tokenizerDir, seed });
  const seconds = ((performance.now() - t0) / 1000).toFixed(1);
  const model = shown(demo.modelPath);
  const loraDir = shown(demo.loraDir);
  const example = `/compose cat:<${DEMO_LORAS[0].name}> penguin:<${DEMO_LORAS[1].name}> in a house --steps 8`;
  console.log(
    [
      `Wrote a demo model to ${model} (${(demo.modelBytes / 2 ** 20).toFixed(1)} MB) and ${demo.loras.length} LoRAs to ${loraDir} (${demo.loras.map((l) => l.name).join(', ')}) in ${seconds} s.`,
      '',
      'Its weights are RANDOM: it has Stable Diffusion 1.5’s layout at tiny widths and draws noise, not pictures.',
      'It is there to show the whole flow — command, queue, progress, image, masks, buttons — before you',
      'download a real SD 1.5 checkpoint (about 4 GB).',
      '',
      'Start the bot on it (MAX_SIZE=128 keeps each picture to seconds on a CPU):',
      '',
      `  MODEL_PATH=${model} LORA_DIR=${loraDir} MAX_SIZE=128 npm start`,
      '',
      `then open the playground address it prints (http://127.0.0.1:3000 by default) and type`,
      '',
      `  ${example}`,
      '',
      'For real pictures, set MODEL_PATH to an SD 1.5 checkpoint (a diffusers folder or a .safetensors file)',
      'and LORA_DIR to a folder of SD 1.5 LoRAs.',
    ].join('\n'),
  );
}

if (isEntryPoint(import.meta.url)) {
  try {
    main();
  } catch (e) {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  }
}
