// Random SD 1.x checkpoints: a small one written at the fixture's widths has exactly the
// fixture single file's keys and shapes, opens as the configs it was written from, is
// deterministic from its seed, is not rewritten when complete, and runs through the UNet
// (also from the compile cache's optimised copy) with finite outputs. SD 1.5's full
// tensor list is checked against the published parameter counts without writing it.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { SD15_TEXT_ENCODER, SD15_UNET, SD15_VAE } from '../../engine/architecture.ts';
import * as G from '../../engine/graph/index.ts';
import { loraFeeds } from '../../engine/lora/gated.ts';
import { compileUNet } from '../../engine/models/compiled.ts';
import { gaussianNoise } from '../../engine/schedulers/noise.ts';
import { openCheckpoint } from '../../engine/weights/checkpoint.ts';
import { parameterCount, type TensorPlan } from '../../engine/weights/initial-weights.ts';
import { unetLayoutFromLdm, vaeLayoutFromLdm } from '../../engine/weights/ldm-layout.ts';
import { SafetensorsFile } from '../../engine/weights/safetensors.ts';
import {
  clipConfigFromShapes,
  unetConfigFromShapes,
  vaeConfigFromShapes,
} from '../../engine/weights/single-file.ts';
import {
  modelTensors,
  type RandomModelSpec,
  SD15_PARAMETERS,
  SD15_RANDOM_MODEL,
  verifyRandomModel,
  writeRandomModel,
} from '../../tools/random-model.ts';
import { fixtureDir } from '../fixtures.ts';

const tokenizerDir = join(fixtureDir(), 'model', 'tokenizer');
const tmp = mkdtempSync(join(tmpdir(), 'clora-random-model-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** The tiny-sd15 fixture's widths (its README), over SD 1.5's defaults. */
const TINY: RandomModelSpec = {
  unet: { ...SD15_UNET, block_out_channels: [32, 64, 64, 64], cross_attention_dim: 32 },
  textEncoder: {
    ...SD15_TEXT_ENCODER,
    hidden_size: 32,
    intermediate_size: 64,
    num_hidden_layers: 2,
    num_attention_heads: 4,
  },
  vae: { ...SD15_VAE, block_out_channels: [32, 32, 32, 64] },
  seed: 7,
};

const shapesOf = (file: SafetensorsFile) =>
  Object.fromEntries(file.names().map((n) => [n, file.info(n).shape] as const));

describe('random model at the fixture widths', () => {
  const dir = join(tmp, 'tiny');
  const model = writeRandomModel(dir, TINY, { tokenizerDir });

  it('has exactly the keys and shapes of the fixture single file (the real LDM layout)', () => {
    const ours = SafetensorsFile.open(model.path);
    const real = SafetensorsFile.open(join(fixtureDir(), 'tiny-sd15.safetensors'));
    assert.deepEqual(shapesOf(ours), shapesOf(real));
    assert.ok(ours.names().every((n) => ours.info(n).dtype === 'F32'));
    ours.close();
    real.close();
  });

  it('opens with openCheckpoint as the configs it was written from', () => {
    const ck = openCheckpoint(model.path);
    assert.equal(ck.tokenizerDir, join(dir, 'tokenizer'));
    assert.deepEqual(ck.unet.config, TINY.unet);
    assert.deepEqual(ck.textEncoder.config, TINY.textEncoder);
    assert.deepEqual(ck.vae.config, TINY.vae);
    assert.equal(verifyRandomModel(ck, TINY).length, 3);
  });

  it('draws PyTorch-default values: ±1/√fan_in, norms 1 and 0, embeddings with std 0.02', () => {
    const ck = openCheckpoint(model.path);
    const conv = ck.unet.weights.float32('down_blocks.1.resnets.0.conv1.weight'); // [64, 32, 3, 3]
    const bound = 1 / Math.sqrt(32 * 9);
    const largest = conv.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    assert.ok(largest <= bound && largest > 0.95 * bound, `largest |w| ${largest}, bound ${bound}`);
    assert.ok(ck.unet.weights.float32('down_blocks.1.resnets.0.norm1.weight').every((v) => v === 1));
    assert.ok(ck.unet.weights.float32('down_blocks.1.resnets.0.norm1.bias').every((v) => v === 0));
    const emb = ck.textEncoder.weights.float32('text_model.embeddings.token_embedding.weight');
    const std = Math.sqrt(emb.reduce((s, v) => s + v * v, 0) / emb.length);
    assert.ok(Math.abs(std - 0.02) < 0.0005, `embedding std ${std}`);
  });

  it('is deterministic from the seed and skips a complete file', () => {
    const stamp = statSync(model.path).mtimeMs;
    const again = writeRandomModel(dir, TINY, { tokenizerDir });
    assert.equal(again.written, false);
    assert.equal(statSync(model.path).mtimeMs, stamp);
    const twin = writeRandomModel(join(tmp, 'twin'), TINY, { tokenizerDir });
    const other = writeRandomModel(join(tmp, 'other'), { ...TINY, seed: 8 }, { tokenizerDir });
    assert.ok(twin.written && other.written);
    const name = 'model.diffusion_model.output_blocks.4.1.transformer_blocks.0.attn2.to_k.weight';
    const read = (path: string) => SafetensorsFile.open(path).float32(name);
    assert.deepEqual(read(twin.path), read(model.path));
    assert.notDeepEqual(read(other.path), read(model.path));
  });

  it('runs the UNet to finite noise, also from the compile cache and with LoRA slots', async () => {
    const ck = openCheckpoint(model.path);
    const feeds = {
      sample: G.hostTensor('float32', gaussianNoise(1, 2 * 4 * 16 * 16), [2, 4, 16, 16]),
      timestep: G.hostTensor('float32', Float32Array.of(500, 10), [2]),
      context: G.hostTensor('float32', gaussianNoise(2, 2 * 77 * 32), [2, 77, 32]),
    };
    const inMemory = await compileUNet(ck, { lora: false });
    const expected = (await inMemory.model.run(feeds)).noise.data as Float32Array;
    await inMemory.model.release();
    assert.ok(expected.every(Number.isFinite));
    assert.ok(expected.some((v) => v !== 0));

    // External data: the first compile saves onnxruntime's optimised copy, the second loads it.
    const cacheDir = join(tmp, 'onnx');
    for (const reused of [false, true]) {
      const net = await compileUNet(ck, { lora: false, cacheDir, externalDataThreshold: 0 });
      assert.equal(net.model.stats.reusedCache, reused);
      assert.equal(net.model.stats.reusedOptimized, reused);
      const noise = (await net.model.run(feeds)).noise.data as Float32Array;
      await net.model.release();
      for (let i = 0; i < noise.length; i++)
        assert.ok(Math.abs(noise[i] - expected[i]) < 1e-4, `noise[${i}]`);
    }

    const gated = await compileUNet(ck, { lora: true });
    const out = (await gated.model.run({ ...feeds, ...loraFeeds(gated.slots!, [], 2) })).noise.data;
    await gated.model.release();
    assert.deepEqual(out, expected);
  });
});

describe('random model at SD 1.5 size (tensor list only)', () => {
  const parts = modelTensors(SD15_RANDOM_MODEL);

  it('has SD 1.5 parameter counts: UNet 859.52M, text encoder 123.06M, VAE 83.65M', () => {
    assert.equal(parameterCount(parts.unet), SD15_PARAMETERS.unet);
    assert.equal(parameterCount(parts.textEncoder), SD15_PARAMETERS.textEncoder);
    assert.equal(parameterCount(parts.vae), SD15_PARAMETERS.vae);
  });

  it('reads back as SD15_UNET, SD15_TEXT_ENCODER and SD15_VAE from its shapes', () => {
    const view = (tensors: TensorPlan[], prefix: string) => {
      const shapes = new Map(tensors.map((t) => [t.name.slice(prefix.length), t.shape]));
      return { names: new Set(shapes.keys()), shape: (n: string) => shapes.get(n)! };
    };
    const unet = view(parts.unet, 'model.diffusion_model.');
    const layout = unetLayoutFromLdm(unet.names);
    assert.ok(typeof layout !== 'string');
    assert.deepEqual(unetConfigFromShapes(unet.shape, unet.names, layout), SD15_UNET);
    const clip = view(parts.textEncoder, 'cond_stage_model.transformer.');
    assert.deepEqual(clipConfigFromShapes(clip.shape, clip.names), SD15_TEXT_ENCODER);
    const vae = view(parts.vae, 'first_stage_model.');
    const { levels, layersPerBlock } = vaeLayoutFromLdm(vae.names);
    assert.deepEqual(vaeConfigFromShapes(vae.shape, vae.names, levels, layersPerBlock), SD15_VAE);
  });
});
