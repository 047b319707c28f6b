// Training with the engine's autodiff: weights read as graph inputs get gradients that
// match finite differences, AdamW takes the textbook step, a compiled step learns, and the
// parameters survive a round trip through safetensors.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import * as G from '../../engine/graph/index.ts';
import { convLayer, groupNormLayer, linearLayer, type ModelContext } from '../../engine/models/layers.ts';
import { AdamW } from '../../engine/training/adamw.ts';
import { TrainingStep } from '../../engine/training/step.ts';
import { TensorStore } from '../../engine/training/tensor-store.ts';
import { rng } from '../gradcheck.ts';

function randomStore(seed: number, shapes: Record<string, number[]>): TensorStore {
  const rand = rng(seed);
  const store = new TensorStore('test weights');
  for (const [name, shape] of Object.entries(shapes)) {
    const n = shape.reduce((a, b) => a * b, 1);
    store.set(
      name,
      shape,
      Float32Array.from({ length: n }, () => (rand() * 2 - 1) * 0.5),
    );
  }
  return store;
}

/** conv → group norm → SiLU → linear on the channels, MSE against a target: the layers a UNet trains. */
async function smallNetwork(weights: TensorStore, trainable: (name: string) => boolean) {
  const g = new G.Graph('small');
  const ctx: ModelContext = { graph: g, weights, dtype: 'float32', namespace: 'net.', trainable };
  const x = g.input('x', 'float32', [2, 3, 5, 5]);
  const target = g.input('target', 'float32', [2, 25, 6]);
  let h = convLayer(ctx, 'conv', x, { stride: 1, padding: 1 });
  h = G.silu(groupNormLayer(ctx, 'norm', h, 2, 1e-5));
  const tokens = G.transpose(G.reshape(h, [2, 4, 25]), [0, 2, 1]);
  const y = linearLayer(ctx, 'proj', tokens);
  const d = G.sub(y, target);
  const loss = G.reduceMean(G.mul(d, d));
  return TrainingStep.compile(g, loss, weights, { namespace: 'net.', intraOpThreads: 1 });
}

const SHAPES = {
  'conv.weight': [4, 3, 3, 3],
  'conv.bias': [4],
  'norm.weight': [4],
  'norm.bias': [4],
  'proj.weight': [6, 4],
  'proj.bias': [6],
};

function feedsFor(seed: number) {
  const rand = rng(seed);
  const r = (n: number) => Float32Array.from({ length: n }, () => rand() * 2 - 1);
  return {
    x: G.hostTensor('float32', r(150), [2, 3, 5, 5]),
    target: G.hostTensor('float32', r(300), [2, 25, 6]),
  };
}

describe('training with the engine', () => {
  it('weights marked trainable become graph inputs with gradients that match finite differences', async () => {
    const weights = randomStore(7, SHAPES);
    const step = await smallNetwork(weights, () => true);
    try {
      assert.deepEqual(step.trained.sort(), Object.keys(SHAPES).sort());
      const feeds = feedsFor(3);
      const { grads } = await step.evaluate(feeds);
      const rand = rng(11);
      for (const name of Object.keys(SHAPES)) {
        const p = weights.float32(name);
        const u = Float32Array.from(p, () => rand() * 2 - 1);
        const g = grads.get(name) as Float32Array;
        const analytic = g.reduce((s, gi, i) => s + gi * u[i], 0);
        const h = 1e-2;
        const original = p.slice();
        const lossAt = async (sign: number) => {
          for (let i = 0; i < p.length; i++) p[i] = original[i] + sign * h * u[i];
          return (await step.evaluate(feeds)).loss;
        };
        const numeric = ((await lossAt(1)) - (await lossAt(-1))) / (2 * h);
        p.set(original);
        assert.ok(
          Math.abs(analytic - numeric) <= 2e-2 * Math.max(Math.abs(analytic), Math.abs(numeric)) + 1e-4,
          `d loss / d ${name}: analytic ${analytic} vs numeric ${numeric}`,
        );
      }
    } finally {
      await step.release();
    }
  });

  it('weights not marked trainable stay constants and get no gradient', async () => {
    const weights = randomStore(7, SHAPES);
    const step = await smallNetwork(weights, (name) => name.startsWith('proj.'));
    try {
      assert.deepEqual(step.trained.sort(), ['proj.bias', 'proj.weight']);
    } finally {
      await step.release();
    }
  });

  it('AdamW takes the textbook first step, with decoupled decay and clipping', () => {
    const params = new TensorStore('p');
    params.set('w', [2, 2], Float32Array.of(1, -2, 3, 0.5));
    params.set('b', [2], Float32Array.of(0.1, -0.1));
    const optimiser = new AdamW(params, new TensorStore('m'), {
      beta1: 0.9,
      beta2: 0.999,
      eps: 1e-8,
      weightDecay: 0.1,
      clipNorm: 1,
    });
    const gw = Float32Array.of(3, 0, -4, 0);
    const gb = Float32Array.of(0, 0);
    const norm = optimiser.update(
      new Map([
        ['w', gw],
        ['b', gb],
      ]),
      0.01,
    );
    assert.equal(norm, 5);
    // First step: m̂ = g', v̂ = g'², so the step is lr·sign(g') where g' ≠ 0; decay only on the matrix.
    const w = params.float32('w');
    assert.ok(Math.abs(w[0] - (1 * (1 - 0.001) - 0.01)) < 1e-6);
    assert.ok(Math.abs(w[1] - -2 * (1 - 0.001)) < 1e-6);
    assert.ok(Math.abs(w[2] - (3 * (1 - 0.001) + 0.01)) < 1e-6);
    assert.deepEqual([...params.float32('b')], [...Float32Array.of(0.1, -0.1)]);
    assert.ok(
      Math.abs(optimiser.moments.float32('m.w')[0] - 0.1 * 0.6) < 1e-7,
      'the clipped gradient feeds m',
    );
  });

  it('a compiled step learns: the loss of a small regression falls', async () => {
    const weights = randomStore(5, SHAPES);
    const step = await smallNetwork(weights, () => true);
    const optimiser = new AdamW(weights, new TensorStore('m'));
    try {
      const feeds = feedsFor(9);
      const first = (await step.run(feeds, optimiser, 0.02)).loss;
      let last = first;
      for (let i = 0; i < 60; i++) last = (await step.run(feeds, optimiser, 0.02)).loss;
      assert.ok(last < first * 0.7, `loss went from ${first} to ${last}`);
      assert.equal(optimiser.steps, 61);
    } finally {
      await step.release();
    }
  });

  it('a run stopped, saved and resumed takes the same steps as one that never stopped', async () => {
    const straight = randomStore(5, SHAPES);
    const resumedParams = randomStore(5, SHAPES);
    const feeds = [feedsFor(1), feedsFor(2), feedsFor(3), feedsFor(4)];
    const a = await smallNetwork(straight, () => true);
    const b = await smallNetwork(resumedParams, () => true);
    try {
      const one = new AdamW(straight, new TensorStore('m'));
      for (const f of feeds) await a.run(f, one, 0.01);
      const first = new AdamW(resumedParams, new TensorStore('m'));
      for (const f of feeds.slice(0, 2)) await b.run(f, first, 0.01);
      // Save and reload parameters and moments as train-world does, then go on.
      const dir = mkdtempSync(join(tmpdir(), 'resume-'));
      try {
        writeFileSync(join(dir, 'p.safetensors'), resumedParams.encode());
        writeFileSync(join(dir, 'm.safetensors'), first.moments.encode());
        const reloaded = TensorStore.read(join(dir, 'p.safetensors'));
        for (const name of reloaded.names()) resumedParams.float32(name).set(reloaded.float32(name));
        const second = new AdamW(resumedParams, TensorStore.read(join(dir, 'm.safetensors')));
        second.steps = 2;
        for (const f of feeds.slice(2)) await b.run(f, second, 0.01);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
      for (const name of straight.names()) {
        assert.deepEqual([...resumedParams.float32(name)], [...straight.float32(name)], name);
      }
    } finally {
      await a.release();
      await b.release();
    }
  });

  it('parameters round-trip through safetensors, in float32 exactly and float16 closely', () => {
    const store = randomStore(3, SHAPES);
    const dir = mkdtempSync(join(tmpdir(), 'tensor-store-'));
    try {
      writeFileSync(join(dir, 'a.safetensors'), store.encode({ format: 'pt' }));
      writeFileSync(join(dir, 'b.safetensors'), store.encode({ note: 'half' }, { dtype: 'F16' }));
      const exact = TensorStore.read(join(dir, 'a.safetensors'));
      const half = TensorStore.read(join(dir, 'b.safetensors'));
      assert.deepEqual(TensorStore.metadataOf(join(dir, 'b.safetensors')), { note: 'half' });
      for (const name of store.names()) {
        assert.deepEqual(exact.shape(name), store.shape(name));
        assert.deepEqual([...exact.float32(name)], [...store.float32(name)]);
        const a = store.float32(name);
        half.float32(name).forEach((v, i) => {
          assert.ok(Math.abs(v - a[i]) < 1e-3, name);
        });
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
