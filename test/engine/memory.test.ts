// The memory budget of a composition's batches: the model reproduces the measurements it was
// calibrated on, a batch over the budget runs in chunks of branches with the same result as
// one run, and a job that cannot fit one branch is refused before any compute.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DEFAULT_SAMPLING } from '../../commands/compose/index.ts';
import { SD15_UNET } from '../../engine/architecture.ts';
import { Engine } from '../../engine/clora/engine.ts';
import {
  chunkedAttentionMemory,
  forwardBytesPerSample,
  guidanceBytesPerSample,
  MATERIALISED_ATTENTION,
  planBatches,
  type UNetMemoryModel,
} from '../../engine/clora/memory.ts';
import { type CompositionOutput, type EngineModels, runPlan } from '../../engine/clora/pipeline.ts';
import { planComposition } from '../../engine/clora/plan.ts';
import { type CompositionSpec, compositionSpec, SpecError } from '../../engine/clora/spec.ts';
import { DEFAULT_CHUNK_BYTES_PER_SAMPLE } from '../../engine/models/attention.ts';
import { fixtureDir } from '../fixtures.ts';

const GiB = 1024 ** 3;

// SD 1.5 in fp32: UNet 859.5M, text encoder 123.1M and VAE 83.7M parameters.
const sd15: UNetMemoryModel = {
  weightBytes: (859.5e6 + 123.1e6 + 83.7e6) * 4,
  unet: SD15_UNET,
  elementBytes: 4,
  attention: chunkedAttentionMemory(DEFAULT_CHUNK_BYTES_PER_SAMPLE),
};
const materialised: UNetMemoryModel = { ...sd15, attention: MATERIALISED_ATTENTION };
const twoLoras = { branches: 3, latentHeight: 64, latentWidth: 64, guided: true };

describe('the memory model', () => {
  it('reproduces the SD 1.5 measurements it was calibrated on (npm run bench -- native)', () => {
    const forward = forwardBytesPerSample(sd15, 64, 64);
    const guided = guidanceBytesPerSample(sd15, 64, 64);
    const near = (bytes: number, gib: number) =>
      assert.ok(Math.abs(bytes / GiB - gib) < 0.1, `${(bytes / GiB).toFixed(2)} GiB, measured ${gib}`);
    near(sd15.weightBytes + 2 * forward, 4.63); // plain generation, batch 2
    near(planBatches(sd15, twoLoras, 64 * GiB).peakBytes, 6.28); // CLoRA step, 2 LoRAs
    assert.ok(
      forwardBytesPerSample(materialised, 64, 64) > forward + 0.5 * GiB,
      'materialised: 4096² per head',
    );
    assert.ok(guidanceBytesPerSample(materialised, 64, 64) > guided + 0.5 * GiB, 'and kept for the VJP');
  });

  it('runs everything at once when it fits, and splits each run to what fits beside the weights', () => {
    assert.deepEqual(
      { ...planBatches(sd15, twoLoras, 64 * GiB), peakBytes: 0 },
      { denoisePairs: 3, guidanceBranches: 3, peakBytes: 0 },
    );
    const pair = 2 * forwardBytesPerSample(sd15, 64, 64);
    const guided = guidanceBytesPerSample(sd15, 64, 64);
    const budget = sd15.weightBytes + 2 * guided + 1;
    const split = planBatches(sd15, twoLoras, budget);
    assert.equal(split.guidanceBranches, 2);
    assert.equal(split.denoisePairs, Math.min(3, Math.floor((2 * guided + 1) / pair)));
    assert.ok(split.peakBytes <= budget);
  });

  it('refuses a job that cannot fit one branch, saying what to change', () => {
    assert.throws(
      () => planBatches(sd15, twoLoras, 4.3 * GiB),
      (e: Error) =>
        e instanceof SpecError &&
        /512×512 picture with 2 LoRAs does not fit this engine's memory budget of 4\.3 GiB/.test(e.message) &&
        /smaller size or fewer LoRAs/.test(e.message),
    );
  });
});

describe('branch chunks on the tiny model', () => {
  const dir = fixtureDir();
  const lora = (file: string, name: string) => ({ name, path: join(dir, 'loras', file) });
  let engine: Engine;
  before(async () => {
    engine = await Engine.load({ modelPath: join(dir, 'model') });
  });
  after(async () => {
    await engine?.close();
  });

  const spec = (): CompositionSpec =>
    compositionSpec({
      ...DEFAULT_SAMPLING,
      prompt: 'a cat and a penguin in a house',
      subjects: [
        {
          word: 'cat',
          lora: lora('lora_i_kohya_unet_te.safetensors', 'tabby'),
          weight: 1,
          triggers: ['sks'],
        },
        {
          word: 'penguin',
          lora: lora('lora_ii_kohya_unet_attn_ff.safetensors', 'plush'),
          weight: 1,
          triggers: ['ohwx'],
        },
      ],
      seed: 11,
      steps: 3,
      // non-square and small: latent 16×24, attention grid 4×6
      width: 192,
      height: 128,
      guidance: { iterativeSteps: [0], iterations: 2, updateUntil: 2 },
    });

  /**
   * The engine's memory model with materialised attention, whose guided pass costs about as much
   * as a denoised pair on this model, and a budget that fits exactly one of either at a time.
   */
  const oneBranchAtATime = (models: EngineModels, s: CompositionSpec): EngineModels['memory'] => {
    const model = { ...models.memory!.model, attention: MATERIALISED_ATTENTION };
    const [h, w] = [s.height / 8, s.width / 8];
    const pair = 2 * forwardBytesPerSample(model, h, w);
    const guided = guidanceBytesPerSample(model, h, w);
    assert.ok(
      pair < 2 * guided && guided < 2 * pair,
      'one of each at a time needs costs within 2× of each other',
    );
    return { model, budgetBytes: model.weightBytes + Math.max(pair, guided) };
  };

  const relativeError = (a: Float32Array, b: Float32Array) => {
    let diff = 0;
    let scale = 0;
    for (let i = 0; i < a.length; i++) {
      diff = Math.max(diff, Math.abs(a[i] - b[i]));
      scale = Math.max(scale, Math.abs(b[i]));
    }
    return diff / scale;
  };

  it('gives the same composition one branch at a time as in one batch (latents to 1e-5 relative)', async () => {
    const s = spec();
    const plan = planComposition(s, engine.tokenizer);
    const whole = engine.models();
    const split = { ...whole, memory: oneBranchAtATime(whole, s) };
    const n = plan.branches.length;
    assert.deepEqual(
      {
        ...planBatches(
          split.memory!.model,
          { branches: n, latentHeight: 16, latentWidth: 24, guided: true },
          split.memory!.budgetBytes,
        ),
        peakBytes: 0,
      },
      { denoisePairs: 1, guidanceBranches: 1, peakBytes: 0 },
    );
    const run = (models: EngineModels): Promise<CompositionOutput> => runPlan(models, plan, s);
    const one = await run({ ...whole, memory: { ...whole.memory!, budgetBytes: 1e15 } });
    const chunked = await run(split);
    assert.equal(one.losses.length, chunked.losses.length);
    one.losses.forEach((l, i) => {
      assert.ok(Math.abs(l.loss - chunked.losses[i].loss) <= 1e-5 * Math.abs(l.loss), `loss ${i}`);
    });
    // Batches of different sizes take different GEMM blockings in onnxruntime, so the two runs
    // agree to float32 rounding; the VAE decoder doubles that on the picture (measured 1.0e-5).
    for (const [key, tolerance] of [
      ['latent', 1e-5],
      ['image', 2e-5],
    ] as const) {
      const e = relativeError(chunked[key], one[key]);
      assert.ok(e < tolerance, `${key} differs by ${e} relative`);
      assert.ok(chunked[key].every(Number.isFinite), `${key} has non-finite values`);
    }
    assert.deepEqual(chunked.masks, one.masks);
    assert.deepEqual(chunked.grid, { rows: 4, cols: 6 });
  });

  it('refuses a job over the budget before any compute', async () => {
    const s = spec();
    const models = engine.models();
    const fits = oneBranchAtATime(models, s)!;
    const tight = { ...models, memory: { ...fits, budgetBytes: fits.budgetBytes - 1 } };
    const seen: string[] = [];
    await assert.rejects(
      runPlan(tight, planComposition(s, engine.tokenizer), s, {
        trace: (name) => seen.push(name),
        onProgress: (p) => seen.push(p.phase),
      }),
      (e: Error) => e instanceof SpecError && /192×128 picture with 2 LoRAs does not fit/.test(e.message),
    );
    assert.deepEqual(seen, []);
  });
});
