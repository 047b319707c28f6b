// The float16 compute path (for CUDA hosts) on the CPU provider: weights converted to
// halves, float32 at the graph boundary, LoRA factors cast inside; results agree with
// float32 to half precision.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import * as G from '../../engine/graph/index.ts';
import { readLora } from '../../engine/lora/file.ts';
import { type LoraSlots, loraFeeds } from '../../engine/lora/gated.ts';
import { compileTextEncoder, compileUNet } from '../../engine/models/compiled.ts';
import { gaussianNoise } from '../../engine/schedulers/noise.ts';
import { openCheckpoint } from '../../engine/weights/checkpoint.ts';
import { fixtureDir } from '../fixtures.ts';

const dir = fixtureDir();

function maxRelative(a: Float32Array, b: Float32Array): number {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(a[i]));
  }
  return diff / scale;
}

test('float16 UNet and text encoder with a LoRA agree with float32 to half precision', async () => {
  const ck = openCheckpoint(join(dir, 'model'));
  const lora = readLora(join(dir, 'loras', 'lora_i_kohya_unet_te.safetensors'), {
    unet: ck.unet.weights,
    textEncoder: ck.textEncoder.weights,
  });
  const unetFeeds = (slots: LoraSlots) => ({
    sample: G.hostTensor('float32', gaussianNoise(1, 4 * 32 * 32, 0), [1, 4, 32, 32]),
    timestep: G.hostTensor('float32', Float32Array.of(500), [1]),
    context: G.hostTensor('float32', gaussianNoise(2, 77 * 32, 0), [1, 77, 32]),
    ...loraFeeds(slots, [{ modules: lora.modules, weights: [1] }], 1),
  });
  const full = await compileUNet(ck, { lora: true });
  const half = await compileUNet(ck, { lora: true, dtype: 'float16' });
  const a = (await full.model.run(unetFeeds(full.slots!))).noise.data as Float32Array;
  const b = (await half.model.run(unetFeeds(half.slots!))).noise.data as Float32Array;
  const rel = maxRelative(a, b);
  assert.ok(rel > 0, 'float16 gave bit-identical results: it did not run in halves');
  assert.ok(rel < 1e-2, `float16 UNet differs by ${rel} of the output's scale`);

  const ids = new (await import('onnxruntime-node')).Tensor(
    'int64',
    BigInt64Array.from({ length: 77 }, (_, i) => BigInt(i < 5 ? 320 + i : 49407)),
    [1, 77],
  );
  const te32 = await compileTextEncoder(ck, { lora: true });
  const te16 = await compileTextEncoder(ck, { lora: true, dtype: 'float16' });
  const feeds = (slots: LoraSlots) => ({
    input_ids: ids,
    ...loraFeeds(slots, [{ modules: lora.modules, weights: [1] }], 1),
  });
  const h32 = (await te32.model.run(feeds(te32.slots!))).hidden.data as Float32Array;
  const h16 = (await te16.model.run(feeds(te16.slots!))).hidden.data as Float32Array;
  assert.ok(maxRelative(h32, h16) < 1e-2, 'float16 text encoder drifted');
  for (const n of [full, half, te32, te16]) await n.model.release();
});
