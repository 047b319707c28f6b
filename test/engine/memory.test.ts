// The memory budget of a composition's batches: the model reproduces the measurements it was
// calibrated on, a batch over the budget runs in chunks of branches with the same result as
// one run, and a job that cannot fit one branch is refused before any compute.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Engine } from '../../engine/clora/engine.ts';
import {
  forwardBytesPerSample,
  guidanceBytesPerSample,
  MATERIALISED_ATTENTION,
  planBatches,
  type UNetMemoryModel,
} from '../../engine/clora/memory.ts';
import { type CompositionOutput, type EngineModels, runPlan } from '../../engine/clora/pipeline.ts';
import { planComposition } from '../../engine/clora/plan.ts';
import { type CompositionSpec, SpecError, withDefaults } from '../../engine/clora/spec.ts';
import { SD15_UNET } from '../../engine/models/config.ts';
import { fixtureDir } from '../fixtures.ts';

const GiB = 1024 ** 3;

// SD 1.5 in fp32: UNet 859.5M, text encoder 123.1M and VAE 83.7M parameters.
const sd15: UNetMemoryModel = {
  weightBytes: (859.5e6 + 123.1e6 + 83.7e6) * 4,
  unet: SD15_UNET,
  elementBytes: 4,
  attention: MATERIALISED_ATTENTION,
};

describe('the memory model', () => {
  it('reproduces the SD 1.5 measurements it was calibrated on (ENGINE-NOTES.md)', () => {
    const forward = forwardBytesPerSample(sd15, 64, 64);
    const guided = guidanceBytesPerSample(sd15, 64, 64);
    const near = (bytes: number, gib: number) =>
      assert.ok(Math.abs(bytes / GiB - gib) < 0.1, `${(bytes / GiB).toFixed(2)} GiB, measured ${gib}`);
    near(sd15.weightBytes + 2 * forward, 7.7); // plain generation, batch 2
    near(sd15.weightBytes + 4 * forward + 2 * guided, 15.0); // CLoRA step, 1 LoRA
    assert.ok(sd15.weightBytes + 6 * forward + 3 * guided > 20 * GiB); // 2 LoRAs passed 20 GiB
  });

  it('runs everything at once when it fits, and splits the denoise batch before the guidance', () => {
    const job = { branches: 3, latentHeight: 64, latentWidth: 64, guided: true };
    assert.deepEqual(
      { ...planBatches(sd15, job, 64 * GiB), peakBytes: 0 },
      { denoisePairs: 3, guidanceBranches: 3, peakBytes: 0 },
    );
    const twenty = planBatches(sd15, job, 20 * GiB);
    assert.equal(twenty.guidanceBranches, 3);
    assert.ok(twenty.denoisePairs < 3 && twenty.peakBytes <= 20 * GiB);
    const twelve = planBatches(sd15, job, 12 * GiB);
    assert.ok(twelve.guidanceBranches < 3 && twelve.denoisePairs >= 1 && twelve.peakBytes <= 12 * GiB);
  });

  it('refuses a job that cannot fit one branch, saying what to change', () => {
    const job = { branches: 3, latentHeight: 64, latentWidth: 64, guided: true };
    assert.throws(
      () => planBatches(sd15, job, 8 * GiB),
      (e: Error) =>
        e instanceof SpecError &&
        /512×512 picture with 2 LoRAs does not fit this engine's memory budget of 8\.0 GiB/.test(e.message) &&
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
    withDefaults({
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

  /** A budget that fits exactly one (uncond, cond) pair beside one guided branch. */
  const oneBranchAtATime = (models: EngineModels, s: CompositionSpec) => {
    const m = models.memory!.model;
    const [h, w] = [s.height / 8, s.width / 8];
    return m.weightBytes + 2 * forwardBytesPerSample(m, h, w) + guidanceBytesPerSample(m, h, w);
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

  it('gives the same composition one branch at a time as in one batch (1e-5 relative)', async () => {
    const s = spec();
    const plan = planComposition(s, engine.tokenizer);
    const whole = engine.models();
    const budget = oneBranchAtATime(whole, s);
    const split = { ...whole, memory: { ...whole.memory!, budgetBytes: budget } };
    const n = plan.branches.length;
    assert.deepEqual(
      {
        ...planBatches(
          split.memory.model,
          { branches: n, latentHeight: 16, latentWidth: 24, guided: true },
          budget,
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
    for (const key of ['latent', 'image'] as const) {
      const e = relativeError(chunked[key], one[key]);
      assert.ok(e < 1e-5, `${key} differs by ${e} relative`);
      assert.ok(chunked[key].every(Number.isFinite), `${key} has non-finite values`);
    }
    assert.deepEqual(chunked.masks, one.masks);
    assert.deepEqual(chunked.grid, { rows: 4, cols: 6 });
  });

  it('refuses a job over the budget before any compute', async () => {
    const s = spec();
    const models = engine.models();
    const tight = { ...models, memory: { ...models.memory!, budgetBytes: oneBranchAtATime(models, s) - 1 } };
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
