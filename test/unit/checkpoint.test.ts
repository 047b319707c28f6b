// Checkpoints: the tiny fixture's LDM single file must convert to exactly the diffusers
// folder's tensors (cases.json `single_file_checkpoint`), architecture comes from shapes, and
// wrong or damaged models are refused with a reason.

import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SD15_TEXT_ENCODER, SD15_UNET, SD15_VAE } from '../../engine/architecture.ts';
import { bytesOf, float16BitsToFloat32, float32ToFloat16Bits } from '../../engine/graph/dtype.ts';
import { type Checkpoint, openCheckpoint } from '../../engine/weights/checkpoint.ts';
import {
  unetKeyMap,
  unetLayoutFromDiffusers,
  unetLayoutFromLdm,
  vaeKeyMap,
  vaeLayoutFromLdm,
} from '../../engine/weights/ldm-layout.ts';
import {
  encodeSafetensors,
  SafetensorsFile,
  type TensorToWrite,
  WeightsError,
} from '../../engine/weights/safetensors.ts';
import {
  clipConfigFromShapes,
  unetConfigFromShapes,
  vaeConfigFromShapes,
} from '../../engine/weights/single-file.ts';
import { fixtureDir } from '../fixtures.ts';

const fx = fixtureDir();
const singleFile = join(fx, 'tiny-sd15.safetensors');
const folder = join(fx, 'model');
const tokenizerDir = join(folder, 'tokenizer');
const cases = JSON.parse(readFileSync(join(fx, 'reference', 'cases.json'), 'utf8'));
const sfCase = cases.cases.find((c: { id: string }) => c.id === 'single_file_checkpoint');

const tmp = mkdtempSync(join(tmpdir(), 'clora-checkpoint-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const parts = [
  ['unet', 'unet'],
  ['textEncoder', 'text_encoder'],
  ['vae', 'vae'],
] as const;

/** The fixture single file's tensors, for writing altered copies. */
function fixtureTensors(): TensorToWrite[] {
  const file = SafetensorsFile.open(singleFile);
  const out = file.names().map((name) => ({ name, ...file.info(name), data: file.readRaw(name) }));
  file.close();
  return out;
}

function writeTemp(name: string, bytes: Uint8Array): string {
  const path = join(tmp, name);
  writeFileSync(path, bytes);
  return path;
}

/** A small file holding zeros under the given names and shapes (F16 to stay small). */
function zerosFile(name: string, shapes: Record<string, number[]>): string {
  const tensors = Object.entries(shapes).map(([key, shape]) => ({
    name: key,
    dtype: 'F16' as const,
    shape,
    data: new Uint8Array(2 * shape.reduce((a, b) => a * b, 1)),
  }));
  return writeTemp(name, encodeSafetensors(tensors));
}

function refuses(fn: () => unknown, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof WeightsError, `expected WeightsError, got ${err}`);
    assert.match(err.message, pattern);
    return true;
  });
}

describe('single-file checkpoint (cases.json single_file_checkpoint)', () => {
  let fromFolder: Checkpoint;
  let fromFile: Checkpoint;
  before(() => {
    fromFolder = openCheckpoint(folder);
    fromFile = openCheckpoint(singleFile, { tokenizerDir });
  });

  it('opens both layouts', () => {
    assert.equal(fromFolder.layout, 'diffusers');
    assert.equal(fromFile.layout, 'single-file');
    assert.equal(fromFile.tokenizerDir, tokenizerDir);
    assert.equal(fromFolder.tokenizerDir, tokenizerDir);
    assert.equal(fromFolder.schedulerConfig._class_name, 'PNDMScheduler');
    assert.deepEqual(
      Object.fromEntries(
        Object.entries(fromFile.schedulerConfig).filter(([k]) => k !== '_diffusers_version'),
      ),
      Object.fromEntries(
        Object.entries(fromFolder.schedulerConfig).filter(([k]) => k !== '_diffusers_version'),
      ),
    );
  });

  for (const [part, report] of parts) {
    it(`${part}: every converted tensor equals the diffusers folder's (names, shapes, bytes)`, () => {
      const expected = sfCase.result.report[report].n_tensors;
      const a = fromFolder[part].weights;
      const b = fromFile[part].weights;
      assert.equal(a.names().length, expected);
      assert.deepEqual(b.names().sort(), a.names().sort());
      for (const name of a.names()) {
        assert.deepEqual(b.shape(name), a.shape(name), name);
        const x = a.weightData(name, 'float32');
        const y = b.weightData(name, 'float32');
        assert.equal(y.byteLength, x.byteLength, name);
        assert.ok(Buffer.from(y.read()).equals(Buffer.from(x.read())), `${name} differs`);
      }
    });
  }

  it('reads the architecture from shapes (all config fields but the default size agree)', () => {
    for (const [part] of parts) {
      const { sample_size: s1, ...fileConfig } = fromFile[part].config as unknown as Record<string, unknown>;
      const { sample_size: s2, ...folderConfig } = fromFolder[part].config as unknown as Record<
        string,
        unknown
      >;
      assert.deepEqual(fileConfig, folderConfig, part);
      // a single file does not record its training resolution; SD 1.x's 512 px is assumed
      if (part === 'unet') assert.deepEqual([s1, s2], [64, 32]);
    }
  });

  it('maps the documented key examples with their shapes', () => {
    const file = SafetensorsFile.open(singleFile);
    const examples: Record<string, number[]> = sfCase.result.key_examples;
    const expectedNames: Record<string, [keyof Checkpoint & ('unet' | 'textEncoder' | 'vae'), string]> = {
      'cond_stage_model.transformer.text_model.embeddings.token_embedding.weight': [
        'textEncoder',
        'text_model.embeddings.token_embedding.weight',
      ],
      'cond_stage_model.transformer.text_model.final_layer_norm.weight': [
        'textEncoder',
        'text_model.final_layer_norm.weight',
      ],
      'first_stage_model.decoder.mid.attn_1.q.weight': ['vae', 'decoder.mid_block.attentions.0.to_q.weight'],
      'first_stage_model.decoder.up.3.block.0.conv1.weight': [
        'vae',
        'decoder.up_blocks.0.resnets.0.conv1.weight',
      ],
      'first_stage_model.post_quant_conv.weight': ['vae', 'post_quant_conv.weight'],
      'model.diffusion_model.input_blocks.1.0.in_layers.2.weight': [
        'unet',
        'down_blocks.0.resnets.0.conv1.weight',
      ],
      'model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_q.weight': [
        'unet',
        'down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_q.weight',
      ],
      'model.diffusion_model.middle_block.1.proj_in.weight': [
        'unet',
        'mid_block.attentions.0.proj_in.weight',
      ],
      'model.diffusion_model.output_blocks.2.1.conv.weight': ['unet', 'up_blocks.0.upsamplers.0.conv.weight'],
      'model.diffusion_model.time_embed.0.weight': ['unet', 'time_embedding.linear_1.weight'],
    };
    assert.deepEqual(Object.keys(examples).sort(), Object.keys(expectedNames).sort());
    for (const [ldmKey, shape] of Object.entries(examples)) {
      assert.deepEqual(file.info(ldmKey).shape, shape);
      const [part, name] = expectedNames[ldmKey];
      const squeezed = ldmKey.includes('.attn_1.') ? shape.slice(0, 2) : shape;
      assert.deepEqual(fromFile[part].weights.shape(name), squeezed, name);
      assert.deepEqual(fromFile[part].weights.float32(name), file.float32(ldmKey), name);
    }
    file.close();
  });

  it('gives float16 weights for the graph', () => {
    const w = fromFile.vae.weights.weightData('decoder.mid_block.attentions.0.to_q.weight', 'float16');
    const values = fromFile.vae.weights.float32('decoder.mid_block.attentions.0.to_q.weight');
    assert.equal(w.byteLength, values.length * 2);
    const half = new Uint16Array(w.read().slice().buffer);
    for (let i = 0; i < values.length; i++) assert.equal(half[i], float32ToFloat16Bits(values[i]));
  });
});

describe('LDM ↔ diffusers key maps', () => {
  const file = SafetensorsFile.open(singleFile);
  const names = file.names();
  file.close();
  const unetNames = new Set(
    names.filter((n) => n.startsWith('model.diffusion_model.')).map((n) => n.slice(22)),
  );
  const vaeNames = new Set(names.filter((n) => n.startsWith('first_stage_model.')).map((n) => n.slice(18)));

  it('round-trips every UNet and VAE key', () => {
    const layout = unetLayoutFromLdm(unetNames);
    assert.notEqual(typeof layout, 'string');
    const unet = unetKeyMap(layout as Exclude<typeof layout, string>);
    for (const key of unetNames) {
      const d = unet.toDiffusers(key);
      assert.ok(d, key);
      assert.equal(unet.toLdm(d.name)?.name, key);
    }
    const vae = vaeKeyMap(vaeLayoutFromLdm(vaeNames));
    for (const key of vaeNames) assert.equal(vae.toLdm(vae.toDiffusers(key)!.name)?.name, key);
  });

  it('reads the same UNet layout from either naming', () => {
    const folderUnet = SafetensorsFile.open(join(folder, 'unet', 'diffusion_pytorch_model.safetensors'));
    assert.deepEqual(unetLayoutFromDiffusers(folderUnet.names()), unetLayoutFromLdm(unetNames));
    folderUnet.close();
  });

  it('converts module paths as well as keys, and rejects unknown children', () => {
    const layout = unetLayoutFromLdm(unetNames) as Exclude<ReturnType<typeof unetLayoutFromLdm>, string>;
    const unet = unetKeyMap(layout);
    assert.equal(unet.toLdm('down_blocks.0.attentions.0.proj_in')?.name, 'input_blocks.1.1.proj_in');
    assert.equal(
      unet.toLdm('up_blocks.1.resnets.2.conv_shortcut')?.name,
      'output_blocks.5.0.skip_connection',
    );
    assert.equal(
      unet.toLdm('up_blocks.3.attentions.2.transformer_blocks.0.attn2.to_k')?.name,
      'output_blocks.11.1.transformer_blocks.0.attn2.to_k',
    );
    assert.equal(unet.toDiffusers('input_blocks.1.0.in_layers.1.weight'), undefined);
    assert.equal(unet.toDiffusers('input_blocks.99.0.in_layers.2.weight'), undefined);
  });
});

describe('architecture from shapes at SD 1.5 size', () => {
  // The shapes of runwayml/stable-diffusion-v1-5's single file for the tensors the inference reads.
  const unetShapes: Record<string, number[]> = {
    'input_blocks.0.0.weight': [320, 4, 3, 3],
    'out.2.weight': [4, 320, 3, 3],
    'input_blocks.1.0.out_layers.3.weight': [320, 320, 3, 3],
    'input_blocks.4.0.out_layers.3.weight': [640, 640, 3, 3],
    'input_blocks.7.0.out_layers.3.weight': [1280, 1280, 3, 3],
    'input_blocks.10.0.out_layers.3.weight': [1280, 1280, 3, 3],
    'input_blocks.1.1.proj_in.weight': [320, 320, 1, 1],
    'input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight': [320, 768],
  };
  const lookup = (table: Record<string, number[]>) => (name: string) => {
    assert.ok(table[name], `unexpected lookup ${name}`);
    return table[name];
  };

  it('UNet: SD 1.5 config', () => {
    const layout = {
      levels: 4,
      layersPerBlock: 2,
      downAttention: [true, true, true, false],
      upAttention: [false, true, true, true],
    };
    const config = unetConfigFromShapes(lookup(unetShapes), new Set(Object.keys(unetShapes)), layout);
    assert.deepEqual(config, SD15_UNET);
  });

  it('text encoder: CLIP ViT-L/14 with 12 heads', () => {
    const shapes: Record<string, number[]> = {
      'text_model.embeddings.token_embedding.weight': [49408, 768],
      'text_model.embeddings.position_embedding.weight': [77, 768],
      'text_model.encoder.layers.0.mlp.fc1.weight': [3072, 768],
    };
    const names = new Set(Object.keys(shapes));
    for (let i = 0; i < 12; i++) names.add(`text_model.encoder.layers.${i}.mlp.fc1.weight`);
    assert.deepEqual(clipConfigFromShapes(lookup(shapes), names), SD15_TEXT_ENCODER);
  });

  it('VAE: SD 1.5 config', () => {
    const shapes: Record<string, number[]> = {
      'encoder.conv_in.weight': [128, 3, 3, 3],
      'decoder.conv_out.weight': [3, 128, 3, 3],
      'post_quant_conv.weight': [4, 4, 1, 1],
      'decoder.up.0.block.2.conv2.weight': [128, 128, 3, 3],
      'decoder.up.1.block.2.conv2.weight': [256, 256, 3, 3],
      'decoder.up.2.block.2.conv2.weight': [512, 512, 3, 3],
      'decoder.up.3.block.2.conv2.weight': [512, 512, 3, 3],
    };
    assert.deepEqual(vaeConfigFromShapes(lookup(shapes), new Set(Object.keys(shapes)), 4, 2), SD15_VAE);
  });
});

describe('single files in other dtypes and with extra buffers', () => {
  it('loads an fp16 copy with the extra LDM buffers, converting on read', () => {
    const tensors: TensorToWrite[] = fixtureTensors().map((t) => {
      const values = new Float32Array(t.data.slice().buffer);
      const half = new Uint16Array(values.length);
      for (let i = 0; i < values.length; i++) half[i] = float32ToFloat16Bits(values[i]);
      return { ...t, dtype: 'F16' as const, data: bytesOf(half) };
    });
    tensors.push(
      { name: 'alphas_cumprod', dtype: 'F16', shape: [2], data: new Uint8Array(4) },
      { name: 'model_ema.decay', dtype: 'F16', shape: [], data: new Uint8Array(2) },
      {
        name: 'cond_stage_model.transformer.text_model.embeddings.position_ids',
        dtype: 'I64',
        shape: [1, 77],
        data: new Uint8Array(8 * 77),
      },
    );
    const path = writeTemp('fp16.safetensors', encodeSafetensors(tensors));
    const ck = openCheckpoint(path, { tokenizerDir });
    const ref = openCheckpoint(folder);
    assert.equal(ck.textEncoder.weights.names().length, ref.textEncoder.weights.names().length);
    const name = 'down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k.weight';
    const expected = ref.unet.weights.float32(name).map((v) => float16BitsToFloat32(float32ToFloat16Bits(v)));
    assert.deepEqual(ck.unet.weights.float32(name), expected);
    const raw = ck.unet.weights.weightData(name, 'float16');
    assert.deepEqual(
      new Uint16Array(raw.read().slice().buffer),
      new Uint16Array(expected.length).map((_, i) => float32ToFloat16Bits(expected[i])),
    );
  });
});

describe('openCheckpoint refuses what it cannot use', () => {
  it('pickled files, naming the way out', () => {
    const path = writeTemp('model.ckpt', Uint8Array.from([0x80, 2, 0x7d]));
    refuses(() => openCheckpoint(path), /pickled PyTorch file \(\.ckpt\).*convert it to \.safetensors/);
    for (const ext of ['.pt', '.bin', '.pth']) {
      refuses(() => openCheckpoint(writeTemp(`m${ext}`, new Uint8Array(1))), /pickled PyTorch file/);
    }
  });

  it('an SDXL checkpoint, by its keys or by its cross-attention width', () => {
    const byKeys = zerosFile('sdxl.safetensors', {
      'conditioner.embedders.0.transformer.text_model.final_layer_norm.weight': [8],
      'model.diffusion_model.input_blocks.0.0.weight': [8, 4, 3, 3],
    });
    refuses(
      () => openCheckpoint(byKeys, { tokenizerDir }),
      /this is an SDXL checkpoint.*needs Stable Diffusion 1\.x/,
    );
    const byWidth = zerosFile('wide.safetensors', {
      'model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight': [8, 2048],
      'cond_stage_model.transformer.text_model.final_layer_norm.weight': [8],
      'first_stage_model.post_quant_conv.weight': [4, 4, 1, 1],
    });
    refuses(
      () => openCheckpoint(byWidth, { tokenizerDir }),
      /SDXL checkpoint \(its UNet cross-attends to 2048-wide/,
    );
  });

  it('an SD 2 checkpoint', () => {
    const openClip = zerosFile('sd2.safetensors', {
      'cond_stage_model.model.ln_final.weight': [8],
      'model.diffusion_model.input_blocks.0.0.weight': [8, 4, 3, 3],
    });
    refuses(
      () => openCheckpoint(openClip, { tokenizerDir }),
      /SD 2\.x checkpoint \(it has an OpenCLIP text encoder\)/,
    );
    const byWidth = zerosFile('sd2w.safetensors', {
      'model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight': [8, 1024],
    });
    refuses(() => openCheckpoint(byWidth, { tokenizerDir }), /SD 2\.x checkpoint/);
  });

  it('a VAE on its own, a lone diffusers UNet, a LoRA', () => {
    const vae = zerosFile('vae.safetensors', {
      'encoder.conv_in.weight': [8, 3, 3, 3],
      'decoder.conv_in.weight': [8, 4, 3, 3],
    });
    refuses(() => openCheckpoint(vae), /is a VAE on its own/);
    const unet = zerosFile('unet.safetensors', {
      'conv_in.weight': [8, 4, 3, 3],
      'down_blocks.0.resnets.0.conv1.weight': [8, 8, 3, 3],
    });
    refuses(() => openCheckpoint(unet), /diffusers UNet on its own; give the whole diffusers folder/);
    refuses(
      () => openCheckpoint(join(fx, 'loras', 'lora_i_kohya_unet_te.safetensors')),
      /is a LoRA, not a base model/,
    );
    refuses(
      () => openCheckpoint(join(fx, 'loras', 'lora_iii_peft_unet_te.safetensors')),
      /is a LoRA, not a base model/,
    );
  });

  it('a single file without tokenizer files', () => {
    refuses(
      () => openCheckpoint(singleFile),
      /needs CLIP tokenizer files.*tokenizer.*lacks vocab\.json and merges\.txt/,
    );
    const half = join(tmp, 'half-tokenizer');
    mkdirSync(half, { recursive: true });
    writeFileSync(join(half, 'vocab.json'), '{}');
    refuses(
      () => openCheckpoint(singleFile, { tokenizerDir: half }),
      /the tokenizer folder .* lacks merges\.txt/,
    );
  });

  it('a truncated single file', () => {
    const bytes = readFileSync(singleFile);
    const path = writeTemp('cut.safetensors', bytes.subarray(0, Math.floor(bytes.length * 0.6)));
    refuses(() => openCheckpoint(path, { tokenizerDir }), /lies outside the file.*truncated or corrupt/);
  });

  it('a UNet with layers SD 1.x does not have, or lacking some', () => {
    const tensors = fixtureTensors();
    const extra = [
      ...tensors,
      {
        name: 'model.diffusion_model.extra.0.weight',
        dtype: 'F32' as const,
        shape: [1],
        data: new Uint8Array(4),
      },
    ];
    refuses(
      () => openCheckpoint(writeTemp('extra.safetensors', encodeSafetensors(extra)), { tokenizerDir }),
      /UNet tensors that SD 1\.x does not have \(model\.diffusion_model\.extra\.0\.weight\)/,
    );
    const lacking = tensors.filter(
      (t) => !t.name.startsWith('model.diffusion_model.output_blocks.5.2.conv.'),
    );
    refuses(
      () => openCheckpoint(writeTemp('lacking.safetensors', encodeSafetensors(lacking)), { tokenizerDir }),
      /lacks UNet layers model\.diffusion_model\.output_blocks\.5\.2\.conv/,
    );
    const noVae = tensors.filter((t) => !t.name.startsWith('first_stage_model.'));
    refuses(
      () => openCheckpoint(writeTemp('novae.safetensors', encodeSafetensors(noVae)), { tokenizerDir }),
      /has no VAE \(first_stage_model\.\*\)/,
    );
  });

  it('paths that are neither a folder nor safetensors', () => {
    refuses(() => openCheckpoint(join(tmp, 'absent')), /does not exist/);
    refuses(
      () => openCheckpoint(writeTemp('notes.txt', new Uint8Array(3))),
      /neither a folder nor a \.safetensors file/,
    );
    const empty = join(tmp, 'empty-folder');
    mkdirSync(empty, { recursive: true });
    refuses(() => openCheckpoint(empty), /not a diffusers checkpoint/);
  });
});

describe('diffusers folders that are refused', () => {
  /** A copy of the fixture folder made of links, with some files replaced. */
  function linkedFolder(name: string, replace: Record<string, string | null>): string {
    const root = join(tmp, name);
    const files = [
      'model_index.json',
      'unet/config.json',
      'unet/diffusion_pytorch_model.safetensors',
      'text_encoder/config.json',
      'text_encoder/model.safetensors',
      'vae/config.json',
      'vae/diffusion_pytorch_model.safetensors',
      'scheduler/scheduler_config.json',
      'tokenizer/vocab.json',
      'tokenizer/merges.txt',
    ];
    for (const f of new Set([...files, ...Object.keys(replace)])) {
      const target = join(root, f);
      mkdirSync(join(target, '..'), { recursive: true });
      if (f in replace) {
        if (replace[f] !== null) writeFileSync(target, replace[f]);
      } else symlinkSync(join(folder, f), target);
    }
    return root;
  }

  it('the linked copy itself opens (the refusals below come from the replaced files)', () => {
    assert.equal(openCheckpoint(linkedFolder('plain', {})).unet.weights.names().length, 684);
  });

  it('an SDXL pipeline', () => {
    const root = linkedFolder('xl', {
      'model_index.json': JSON.stringify({ _class_name: 'StableDiffusionXLPipeline' }),
    });
    refuses(() => openCheckpoint(root), /SDXL checkpoint.*StableDiffusionXLPipeline/);
  });

  it('SD 2 widths in the configs', () => {
    const unet = JSON.parse(readFileSync(join(folder, 'unet', 'config.json'), 'utf8'));
    const root = linkedFolder('sd2', {
      'unet/config.json': JSON.stringify({ ...unet, cross_attention_dim: 1024 }),
    });
    refuses(() => openCheckpoint(root), /SD 2\.x checkpoint \(its UNet cross-attends to 1024-wide/);
  });

  it('pickled weights only', () => {
    const root = linkedFolder('bin', {
      'unet/diffusion_pytorch_model.safetensors': null,
      'unet/diffusion_pytorch_model.bin': 'x',
    });
    refuses(() => openCheckpoint(root), /diffusion_pytorch_model\.bin: is a pickled PyTorch file/);
  });

  it('a config that does not fit the weights', () => {
    const unet = JSON.parse(readFileSync(join(folder, 'unet', 'config.json'), 'utf8'));
    const root = linkedFolder('mismatch', {
      'unet/config.json': JSON.stringify({ ...unet, block_out_channels: [64, 64, 64, 64] }),
    });
    refuses(
      () => openCheckpoint(root),
      /unet\/config\.json implies 'conv_in\.weight' is \[64,4,3,3\] but the weights have \[32,4,3,3\]/,
    );
  });

  it('a broken config.json or missing tokenizer', () => {
    refuses(
      () => openCheckpoint(linkedFolder('badjson', { 'vae/config.json': '{' })),
      /config\.json: is not valid JSON/,
    );
    refuses(
      () => openCheckpoint(linkedFolder('notok', { 'tokenizer/merges.txt': null })),
      /needs CLIP tokenizer files.*lacks merges\.txt/,
    );
  });
});
