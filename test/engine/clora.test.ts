// CLoRA on the tiny SD 1.5 model: masks partition the latent grid, updates lower the loss,
// identical specs give identical bytes, every method and ablation runs, gated and merged
// LoRAs agree, and bad requests are refused before any compute.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { decodedImage } from '../../bot/render/image.ts';
import { encodePng } from '../../bot/render/index.ts';
import { DEFAULT_COMPOSE_LIMITS, DEFAULT_SAMPLING } from '../../commands/compose/request.ts';
import { type CompositionResult, Engine } from '../../engine/clora/engine.ts';
import { type CompositionSpec, compositionSpec, SpecError, type SpecInput } from '../../engine/clora/spec.ts';
import * as G from '../../engine/graph/index.ts';
import { readLora } from '../../engine/lora/file.ts';
import { loraFeeds } from '../../engine/lora/gated.ts';
import { mergedWeights } from '../../engine/lora/merged.ts';
import { compileUNet } from '../../engine/models/compiled.ts';
import { gaussianNoise } from '../../engine/schedulers/noise.ts';
import { fixtureDir } from '../fixtures.ts';

const dir = fixtureDir();
const lora = (file: string, name: string) => ({ name, path: join(dir, 'loras', file) });
const TABBY = lora('lora_i_kohya_unet_te.safetensors', 'tabby');
const PLUSH = lora('lora_ii_kohya_unet_attn_ff.safetensors', 'plush');
const LOCON = lora('lora_iv_kohya_locon_unet.safetensors', 'locon');

// The request limits a worker's engine enforces: the bot's defaults (MAX_LORAS, MAX_STEPS, MAX_SIZE).
const { maxLoras, maxSteps, maxSide } = DEFAULT_COMPOSE_LIMITS;

let engine: Engine;
before(async () => {
  engine = await Engine.load({
    modelPath: join(dir, 'model'),
    limits: { maxLoras, maxSteps, maxSize: maxSide },
  });
});
after(async () => {
  await engine?.close();
});

function spec(input: Partial<SpecInput> & { guidance?: SpecInput['guidance'] } = {}): CompositionSpec {
  return compositionSpec({
    ...DEFAULT_SAMPLING,
    prompt: 'a cat and a penguin in a house',
    subjects: [
      { word: 'cat', lora: TABBY, weight: 1, triggers: ['sks'] },
      { word: 'penguin', lora: PLUSH, weight: 1, triggers: ['ohwx'] },
    ],
    seed: 7,
    steps: 4,
    // 128² keeps the tiny model's 8-head attention cheap: latent 16², maps 4².
    width: 128,
    height: 128,
    ...input,
    guidance: { iterations: 2, ...input.guidance },
  });
}

function finite(result: CompositionResult) {
  assert.equal(result.image.length, 3 * result.width * result.height);
  assert.ok(result.image.every(Number.isFinite), 'the image has non-finite values');
}

describe('CLoRA composition on the tiny model', () => {
  it('gives every latent pixel an owner, the background only where no LoRA claims it', async () => {
    const result = await engine.compose(spec());
    finite(result);
    const [background, ...loras] = result.masks;
    assert.equal(loras.length, 2);
    assert.deepEqual(result.grid, { rows: 128 / 8 / 4, cols: 128 / 8 / 4 });
    for (let p = 0; p < background.length; p++) {
      const claimed = loras.some((m) => m[p] === 1);
      assert.equal(background[p], claimed ? 0 : 1, `pixel ${p}`);
    }
    assert.deepEqual(result.prompts, [
      'a cat and a penguin in a house',
      'a sks cat and a penguin in a house',
      'a cat and a ohwx penguin in a house',
    ]);
    assert.ok(result.maps.some((m) => m.label === 'sks (P1)'));
    assert.ok(result.timings.guidance > 0 && result.timings.denoise > 0 && result.timings.decode > 0);
  });

  it('lowers the contrastive loss over the updates of an iterated step', async () => {
    const result = await engine.compose(
      spec({ guidance: { iterativeSteps: [0], iterations: 8, updateUntil: 1 } }),
    );
    const losses = result.losses.filter((l) => l.step === 0).map((l) => l.loss);
    assert.equal(losses.length, 8);
    assert.ok(losses[7] < losses[0], `loss went from ${losses[0]} to ${losses[7]}`);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    assert.ok(mean(losses.slice(4)) < mean(losses.slice(0, 4)));
  });

  it('stops a burst early once the loss is under the threshold', async () => {
    const full = await engine.compose(
      spec({ guidance: { iterativeSteps: [0], iterations: 6, updateUntil: 1 } }),
    );
    const threshold = full.losses[1].loss + 1e-6;
    const early = await engine.compose(
      spec({ guidance: { iterativeSteps: [0], iterations: 6, updateUntil: 1, lossThreshold: threshold } }),
    );
    assert.equal(early.losses.length, 2);
  });

  it('makes identical PNG bytes from the same spec, and different ones from another seed', async () => {
    const png = async (s: CompositionSpec) => {
      const r = await engine.compose(s);
      return encodePng(decodedImage(r.image, r.width, r.height));
    };
    const a = await png(spec());
    const b = await png(spec());
    const c = await png(spec({ seed: 8 }));
    assert.ok(a.equals(b), 'same spec, different bytes');
    assert.ok(!a.equals(c), 'another seed gave the same image');
  });

  it('starts from the documented seeded noise unless a latent is given', async () => {
    const traced: Float32Array[] = [];
    const s = spec({ method: 'none', subjects: [] });
    const { runPlan } = await import('../../engine/clora/pipeline.ts');
    const { planComposition } = await import('../../engine/clora/plan.ts');
    await runPlan(engine.models(), planComposition(s, engine.tokenizer), s, {
      trace: (name, step, data) => {
        if (name === 'latents' && step === 0) traced.push(data.slice());
      },
    });
    assert.deepEqual(traced[0], gaussianNoise(7, 4 * 16 * 16, 0));
  });

  it('runs every method and ablation', async () => {
    const runs: [string, CompositionSpec][] = [
      ['merge', spec({ method: 'merge' })],
      ['composite', spec({ method: 'composite' })],
      ['none', spec({ method: 'none' })],
      ['no update', spec({ guidance: { update: false } })],
      ['no mask', spec({ guidance: { mask: false } })],
      ['published', spec({ guidance: { published: true } })],
      ['style LoRA', spec({ style: { lora: LOCON, weight: 0.6, triggers: ['watercolor'] } })],
    ];
    const images = new Map<string, Float32Array>();
    for (const [name, s] of runs) {
      const r = await engine.compose(s);
      finite(r);
      images.set(name, r.image);
      if (name === 'no update' || name === 'merge' || name === 'none' || name === 'composite') {
        assert.equal(r.losses.length, 0, `${name} made latent updates`);
      } else assert.ok(r.losses.length > 0, `${name} made no latent update`);
      if (name === 'no mask' || name === 'merge' || name === 'none') assert.equal(r.masks.length, 0, name);
      if (name === 'style LoRA') assert.ok(r.prompts.every((p) => p.endsWith(', watercolor')));
    }
    const clora = (await engine.compose(spec())).image;
    for (const [name, image] of images) assert.notDeepEqual(image, clora, `${name} equals plain CLoRA`);
  });

  it('binds the right occurrence when a subject word repeats', async () => {
    const s = spec({
      prompt: 'a cat next to a cat and a penguin',
      subjects: [
        { word: 'cat', lora: TABBY, weight: 1, triggers: ['sks'], occurrence: 1 },
        { word: 'penguin', lora: PLUSH, weight: 1, triggers: ['ohwx'] },
      ],
      guidance: { update: false },
    });
    const r = await engine.compose(s);
    assert.equal(r.prompts[1], 'a cat next to a sks cat and a penguin');
  });

  it('says a subject once when its trigger phrase ends with it ("sks cat" for cat)', async () => {
    const { planComposition, triggersBefore } = await import('../../engine/clora/plan.ts');
    assert.deepEqual(triggersBefore('cat', ['sks cat', 'cat', 'sks', 'bobcat']), ['sks', 'bobcat']);
    assert.deepEqual(triggersBefore('ice cream', ['pink  ice cream']), ['pink']);
    const s = spec({
      subjects: [
        { word: 'cat', lora: TABBY, weight: 1, triggers: ['sks cat'] },
        { word: 'penguin', lora: PLUSH, weight: 1, triggers: ['ohwx penguin'] },
      ],
    });
    const clora = planComposition(s, engine.tokenizer);
    assert.deepEqual(
      clora.branches.map((b) => b.prompt),
      [
        'a cat and a penguin in a house',
        'a sks cat and a penguin in a house',
        'a cat and a ohwx penguin in a house',
      ],
    );
    // The mask reads the trigger and the word: "sks" and "cat" in P1.
    assert.equal(clora.maskTokens[0].length, 2);
    const merge = planComposition({ ...s, method: 'merge' }, engine.tokenizer);
    assert.equal(merge.branches[0].prompt, 'a sks cat and a ohwx penguin in a house');
  });
});

describe('gated and merged LoRAs', () => {
  it('give the same UNet output', async () => {
    const ck = engine.checkpoint;
    const base = { unet: ck.unet.weights, textEncoder: ck.textEncoder.weights };
    const files = [
      { file: readLora(PLUSH.path, base), weight: 0.8 },
      { file: readLora(LOCON.path, base), weight: 1.3 },
    ];
    const merged = await compileUNet({
      ...ck,
      unet: { ...ck.unet, weights: mergedWeights(ck.unet.weights, 'unet', files) },
    });
    const gated = await compileUNet(ck, { lora: true, loraConvs: true });
    const latent = gaussianNoise(3, 2 * 4 * 32 * 32, 0);
    const context = gaussianNoise(4, 2 * 77 * 32, 0);
    const feeds = {
      sample: G.hostTensor('float32', latent, [2, 4, 32, 32]),
      timestep: G.hostTensor('float32', Float32Array.of(700, 300), [2]),
      context: G.hostTensor('float32', context, [2, 77, 32]),
    };
    const a = (await merged.model.run(feeds)).noise.data as Float32Array;
    const b = (
      await gated.model.run({
        ...feeds,
        ...loraFeeds(
          gated.slots!,
          files.map((f) => ({ modules: f.file.modules, weights: [f.weight, f.weight] })),
          2,
        ),
      })
    ).noise.data as Float32Array;
    let maxDiff = 0;
    for (let i = 0; i < a.length; i++) maxDiff = Math.max(maxDiff, Math.abs(a[i] - b[i]));
    assert.ok(maxDiff < 1e-4, `merged and gated differ by ${maxDiff}`);
    const plain = (await (await compileUNet(ck)).model.run(feeds)).noise.data as Float32Array;
    assert.ok(
      plain.some((v, i) => Math.abs(v - a[i]) > 1e-3),
      'the LoRAs changed nothing',
    );
    await merged.model.release();
    await gated.model.release();
  });
});

describe('bad requests are refused before any compute', () => {
  const refused = async (s: CompositionSpec, pattern: RegExp) => {
    const t0 = performance.now();
    await assert.rejects(engine.compose(s), pattern);
    assert.ok(performance.now() - t0 < 2000, 'the refusal took as long as a run');
  };
  it('a subject word that is not in the prompt', () =>
    refused(
      spec({ subjects: [{ word: 'dog', lora: TABBY, weight: 1, triggers: [] }] }),
      /the subject "dog" does not appear in the prompt/,
    ));
  it('the same LoRA bound twice', () =>
    refused(
      spec({
        subjects: [
          { word: 'cat', lora: TABBY, weight: 1, triggers: [] },
          { word: 'penguin', lora: TABBY, weight: 1, triggers: [] },
        ],
      }),
      /"tabby" is bound to two subjects/,
    ));
  it('more LoRAs than the maximum', () => {
    const words = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i'].map((w) => `${w}x`);
    return refused(
      spec({
        prompt: words.join(' '),
        subjects: words.map((w, i) => ({
          word: w,
          lora: { name: `l${i}`, path: `/nowhere/${i}` },
          weight: 1,
          triggers: [],
        })),
      }),
      /9 LoRAs requested; at most 8/,
    );
  });
  it('a size that is not a multiple of 64', () =>
    refused(spec({ width: 300 }), /width 300 is not supported: use a multiple of 64/));
  it('steps out of range', () => refused(spec({ steps: 0 }), /steps must be a whole number from 1 to 150/));
  it('a CFG scale that is not a number', () =>
    refused(spec({ cfg: Number.NaN }), /the CFG scale must be a finite number, got NaN/));
  it('a missing LoRA file', () =>
    refused(
      spec({
        subjects: [
          {
            word: 'cat',
            lora: { name: 'ghost', path: join(dir, 'loras', 'ghost.safetensors') },
            weight: 1,
            triggers: [],
          },
        ],
      }),
      /ghost\.safetensors/,
    ));
  it('a subject word with no tokens', async () => {
    await assert.rejects(
      engine.compose(spec({ subjects: [{ word: 'cat', lora: TABBY, weight: 1, triggers: ['...'] }] })),
      (e: Error) => e instanceof SpecError && /has no tokens/.test(e.message),
    );
  });
});
