// The graph layer beyond single-op rules: composite blocks, ties, pruning of the backward
// pass, external data, session reuse and the errors users of the layer see.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import { apply1, type OpDef } from '../../engine/graph/graph.ts';
import * as G from '../../engine/graph/index.ts';
import { openSessionCount } from '../../engine/graph/runner.ts';
import { gradCheck, rng, toleranceFor } from '../gradcheck.ts';

function assertGradOk(result: Awaited<ReturnType<typeof gradCheck>>, what: string) {
  const tol = toleranceFor(result.dtype);
  for (const k of result.checks) {
    assert.ok(
      k.error <= tol * k.scale + 1e-4,
      `${what} d/d${k.name}: analytic ${k.analytic} vs numeric ${k.numeric} (${result.dtype})`,
    );
  }
}

function memoryWeight(values: Float32Array): G.WeightData {
  const bytes = new Uint8Array(values.buffer.slice(0));
  return {
    byteLength: bytes.byteLength,
    fingerprint: createHash('sha256').update(bytes).digest('hex'),
    read: () => bytes,
  };
}

const tmp = mkdtempSync(join(tmpdir(), 'clora-graph-'));

function assertClose(a: G.HostTensor, b: G.HostTensor, tolerance = 1e-5): void {
  assert.deepEqual(a.dims, b.dims);
  const x = a.data as Float32Array;
  const y = b.data as Float32Array;
  for (let i = 0; i < x.length; i++) {
    assert.ok(Math.abs(x[i] - y[i]) <= tolerance * (1 + Math.abs(y[i])), `element ${i}: ${x[i]} vs ${y[i]}`);
  }
}
after(() => rmSync(tmp, { recursive: true, force: true }));

describe('composite gradients', () => {
  it('an SD-style transformer block: self-attention, cross-attention, GEGLU, LayerNorms', async () => {
    const c = 8;
    const ctxDim = 6;
    const heads = 2;
    const result = await gradCheck(
      (g, [x, ctx]) => {
        const r = rng(7);
        const w = (_name: string, shape: number[]) =>
          g.constant(
            Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => (r() * 2 - 1) * 0.4),
            shape,
            x.dtype,
          );
        const ln = (h: G.Tensor, i: number) => G.layerNorm(h, w(`ln${i}g`, [c]), w(`ln${i}b`, [c]));
        const attention = (h: G.Tensor, context: G.Tensor, i: number, kv: number) => {
          const q = G.linear(h, w(`q${i}`, [c, c]));
          const k = G.linear(context, w(`k${i}`, [c, kv]));
          const v = G.linear(context, w(`v${i}`, [c, kv]));
          return G.linear(G.multiHeadAttention(q, k, v, heads).out, w(`o${i}`, [c, c]), w(`ob${i}`, [c]));
        };
        let h = x;
        const n1 = ln(h, 1);
        h = G.add(h, attention(n1, n1, 1, c));
        h = G.add(h, attention(ln(h, 2), ctx, 2, ctxDim));
        const [a, gate] = G.split(G.linear(ln(h, 3), w('ff0', [8 * c, c]), w('ff0b', [8 * c])), -1, 2);
        h = G.add(h, G.linear(G.mul(a, G.gelu(gate)), w('ff2', [c, 4 * c]), w('ff2b', [c])));
        return h;
      },
      [
        { name: 'x', shape: ['B', 'N', c], dims: [2, 5, c] },
        { name: 'ctx', shape: ['B', 3, ctxDim], dims: [2, 3, ctxDim] },
      ],
      { directions: 3 },
    );
    assertGradOk(result, 'transformer block');
  });

  it('a ResNet block: GroupNorm, SiLU, conv, time-embedding add, conv shortcut', async () => {
    const cin = 4;
    const cout = 6;
    const temb = 5;
    const result = await gradCheck(
      (g, [x, t]) => {
        const r = rng(11);
        const w = (shape: number[]) =>
          g.constant(
            Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => (r() * 2 - 1) * 0.3),
            shape,
            x.dtype,
          );
        let h = G.silu(G.groupNorm(x, w([cin]), w([cin]), 2));
        h = G.conv2d(h, w([cout, cin, 3, 3]), w([cout]), { padding: 1 });
        const tproj = G.linear(G.silu(t), w([cout, temb]), w([cout]));
        h = G.add(h, G.reshape(tproj, [-1, cout, 1, 1]));
        h = G.conv2d(G.silu(G.groupNorm(h, w([cout]), w([cout]), 2)), w([cout, cout, 3, 3]), w([cout]), {
          padding: 1,
        });
        return G.add(G.conv2d(x, w([cout, cin, 1, 1]), w([cout])), h);
      },
      [
        { name: 'x', shape: ['B', cin, 'H', 'W'], dims: [2, cin, 4, 6] },
        { name: 't', shape: ['B', temb], dims: [2, temb] },
      ],
      { directions: 3 },
    );
    assertGradOk(result, 'resnet block');
  });
});

describe('memory-efficient attention', () => {
  // One graph computing both kernels on the same q, k, v, with symbolic row counts.
  async function bothKernels(rows: number, keys: number, chunking: number | G.ChunkAttrs) {
    const g = new G.Graph('kernels');
    const q = g.input('q', 'float32', ['B', 2, 'N', 8]);
    const k = g.input('k', 'float32', ['B', 2, 'M', 8]);
    const v = g.input('v', 'float32', ['B', 2, 'M', 5]);
    const loss = (t: G.Tensor) => G.reduceSum(G.mul(t, t));
    const chunked = G.chunkedAttention(q, k, v, chunking);
    const materialised = G.attention(q, k, v).out;
    const [cq, ck, cv] = G.grad([loss(chunked)], [q, k, v]);
    const [mq, mk, mv] = G.grad([loss(materialised)], [q, k, v]);
    g.output('chunked', chunked).output('materialised', materialised);
    for (const [name, t] of Object.entries({ cq, ck, cv, mq, mk, mv })) g.output(name, t);
    const model = await G.compile(g);
    const r = rng(rows * 31 + keys);
    const feed = (dims: number[]) =>
      G.hostTensor(
        'float32',
        Float32Array.from({ length: dims.reduce((a, b) => a * b) }, () => 3 * (r() - 0.5)),
        dims,
      );
    const out = await model.run({
      q: feed([2, 2, rows, 8]),
      k: feed([2, 2, keys, 8]),
      v: feed([2, 2, keys, 5]),
    });
    await model.release();
    return out;
  }

  const maxRelative = (a: ort.Tensor, b: ort.Tensor) => {
    const [x, y] = [a.data as Float32Array, b.data as Float32Array];
    assert.equal(x.length, y.length);
    const scale = Math.max(...y.map(Math.abs));
    return Math.max(...x.map((v, i) => Math.abs(v - y[i]))) / scale;
  };

  // at most 4 chunks of up to 24 scores a head: 9 × 5 runs as 3, 3, 3 and an empty chunk;
  // 6 × 6 as 4, 2 and two empty; 4 × 4 in one chunk; 14 × 14 past the budget as 4, 4, 4, 2
  const budget = { chunks: 4, chunkScores: 24 };
  for (const [rows, keys, chunking] of [
    [64, 64, 8],
    [37, 77, 4],
    [5, 3, 5],
    [9, 5, 4],
    [6, 6, budget],
    [4, 4, budget],
    [14, 14, budget],
  ] as const) {
    const label =
      typeof chunking === 'number'
        ? `${chunking} chunks`
        : `at most ${chunking.chunks} chunks of ${chunking.chunkScores} scores`;
    it(`agrees with the materialised kernel: ${rows} rows, ${keys} keys, ${label}`, async () => {
      const out = await bothKernels(rows, keys, chunking);
      assert.deepEqual(out.chunked.dims, [2, 2, rows, 5]);
      assert.ok(maxRelative(out.chunked, out.materialised) < 1e-5, 'result');
      for (const x of ['q', 'k', 'v']) assert.ok(maxRelative(out[`c${x}`], out[`m${x}`]) < 1e-5, `d${x}`);
    });
  }

  it("onnxruntime's fused kernel agrees with the materialised one, forward and backward", async () => {
    const g = new G.Graph('fused');
    const q = g.input('q', 'float32', ['B', 'N', 16]);
    const k = g.input('k', 'float32', ['B', 'M', 16]);
    const v = g.input('v', 'float32', ['B', 'M', 16]);
    const loss = (t: G.Tensor) => G.reduceSum(G.mul(t, t));
    const fused = G.fusedMultiHeadAttention(q, k, v, 4, 3);
    const materialised = G.multiHeadAttention(q, k, v, 4).out;
    g.output('fused', fused).output('materialised', materialised);
    for (const [i, t] of G.grad([loss(fused)], [q, k, v]).entries()) g.output(`f${i}`, t);
    for (const [i, t] of G.grad([loss(materialised)], [q, k, v]).entries()) g.output(`m${i}`, t);
    const model = await G.compile(g);
    const r = rng(7);
    const feed = (dims: number[]) =>
      G.hostTensor(
        'float32',
        Float32Array.from({ length: dims.reduce((a, b) => a * b) }, () => 2 * (r() - 0.5)),
        dims,
      );
    const out = await model.run({ q: feed([2, 40, 16]), k: feed([2, 77, 16]), v: feed([2, 77, 16]) });
    await model.release();
    assert.ok(maxRelative(out.fused, out.materialised) < 1e-5, 'result');
    for (const i of [0, 1, 2]) assert.ok(maxRelative(out[`f${i}`], out[`m${i}`]) < 1e-5, `gradient ${i}`);
  });

  it('sizes chunks by memory per sample, in powers of two, never past the rows', () => {
    const at = (queries: number, keys: number, bytesPerSample: number) =>
      G.queryChunksFor({ queries, keys, heads: 8, bytesPerElement: 4, bytesPerSample });
    // SD 1.5 at 512²: 4096 rows × 4096 keys × 8 heads × 2 matrices × 4 B = 1 GiB per sample
    assert.equal(at(4096, 4096, 64 * 2 ** 20), 16);
    assert.equal(at(4096, 77, 64 * 2 ** 20), 1);
    assert.equal(at(3, 4096, 1), 2);
  });

  it('sizes chunks at run time within the same budget: the count at the reference, rows by the keys', () => {
    const at = (queries: number, keys: number) =>
      G.queryChunkingFor({ queries, keys, heads: 8, bytesPerElement: 4, bytesPerSample: 64 * 2 ** 20 });
    // 64 MiB / (2 matrices × 8 heads × 4 B) = 2²⁰ scores a head: 256 rows of 4096 keys, 1024 of 1024
    assert.deepEqual(at(4096, 4096), { chunks: 16, chunkScores: 2 ** 20 });
    assert.deepEqual(at(4096, 77), { chunks: 1 });
  });

  it('refuses more chunks than rows', () => {
    const g = new G.Graph();
    const q = g.input('q', 'float32', [1, 1, 3, 2]);
    assert.throws(() => G.chunkedAttention(q, q, q, 4), /4 chunks are more than the 3 query rows/);
  });
});

describe('gradient details', () => {
  it('splits the gradient of a max evenly among ties', async () => {
    const g = new G.Graph('ties');
    const x = g.input('x', 'float32', [2, 4]);
    const [gx] = G.grad([G.reduceSum(G.reduceMax(x, 1))], [x]);
    g.output('gx', gx);
    const m = await G.compile(g);
    const out = await m.run({
      x: G.hostTensor('float32', Float32Array.from([1, 3, 3, 2, 5, 5, 5, 0]), [2, 4]),
    });
    assert.deepEqual(
      [...(out.gx.data as Float32Array)].map((v) => Number(v.toFixed(6))),
      [0, 0.5, 0.5, 0, 0.333333, 0.333333, 0.333333, 0],
    );
    await m.release();
  });

  it('the checker itself catches a wrong rule', async () => {
    const wrongSin: OpDef<Record<string, never>> = {
      name: 'WrongSin',
      infer: ([x]) => [{ dtype: x.dtype, shape: x.shape }],
      emit: (n, out) => out.node('Sin', [out.name(n.inputs[0])], [out.name(n.outputs[0])]),
      vjp: (n, [g]) => [g ? G.mul(g, G.sin(n.inputs[0])) : undefined], // should be cos
    };
    const result = await gradCheck((_, [x]) => apply1(wrongSin, [x], {}), [{ name: 'x', shape: [6] }]);
    const tol = toleranceFor(result.dtype);
    assert.ok(
      result.checks.some((k) => k.error > tol * k.scale + 1e-4),
      'a wrong VJP went unnoticed',
    );
  });

  it('builds backward nodes only on paths from the chosen inputs to the outputs', () => {
    const nodesAddedByGrad = (withUnrelatedBranch: boolean) => {
      const g = new G.Graph('prune');
      const x = g.input('x', 'float32', [3]);
      const z = g.input('z', 'float32', [3]);
      let loss = G.reduceSum(G.mul(x, G.sin(x)));
      if (withUnrelatedBranch) loss = G.add(loss, G.reduceSum(G.exp(G.tanh(z))));
      const before = g.nodes.length;
      G.grad([loss], [x]);
      return g.nodes.map((n) => n.op.name).slice(before);
    };
    assert.deepEqual(nodesAddedByGrad(true), nodesAddedByGrad(false));
  });

  it('gives a zero gradient for an input that does not reach the output', async () => {
    const g = new G.Graph('unreached');
    const x = g.input('x', 'float32', ['N']);
    const y = g.input('y', 'float32', ['N']);
    const [gy] = G.grad([G.reduceSum(G.mul(x, x))], [y]);
    g.output('gy', gy);
    const m = await G.compile(g);
    const out = await m.run({
      x: G.hostTensor('float32', Float32Array.from([1, 2]), [2]),
      y: G.hostTensor('float32', Float32Array.from([3, 4]), [2]),
    });
    assert.deepEqual([...(out.gy.data as Float32Array)], [0, 0]);
    await m.release();
  });
});

describe('external data', () => {
  it('writes large weights to a cache directory keyed by content and reuses them', async () => {
    const build = (scale: number) => {
      const g = new G.Graph('extdata');
      const x = g.input('x', 'float32', ['B', 64]);
      const w1 = g.weight(
        'w1',
        'float32',
        [128, 64],
        memoryWeight(Float32Array.from({ length: 128 * 64 }, (_, i) => Math.sin(i) * scale)),
      );
      const w2 = g.weight(
        'w2',
        'float32',
        [64],
        memoryWeight(Float32Array.from({ length: 64 }, (_, i) => i / 64)),
      );
      g.output('y', G.linear(G.add(x, w2), w1));
      return g;
    };
    const feeds = {
      x: G.hostTensor(
        'float32',
        Float32Array.from({ length: 128 }, (_, i) => Math.cos(i)),
        [2, 64],
      ),
    };
    const cacheDir = join(tmp, 'cache');
    const inMemory = await G.compile(build(1), { externalDataThreshold: 1 << 20 });
    const external = await G.compile(build(1), { externalDataThreshold: 1024, cacheDir });
    assert.equal(external.stats.reusedCache, false);
    const entries = readdirSync(cacheDir);
    assert.equal(entries.length, 1);
    const dir = join(cacheDir, entries[0]);
    assert.ok(existsSync(join(dir, 'model.onnx')) && existsSync(join(dir, 'weights.bin')));
    // w2 (256 bytes, used first) at 0, then w1 on the next page boundary.
    assert.equal(statSync(join(dir, 'weights.bin')).size, 4096 + 128 * 64 * 4);
    const a = await inMemory.run(feeds);
    const b = await external.run(feeds);
    assert.deepEqual(a.y.data, b.y.data);
    await external.release();

    const again = await G.compile(build(1), { externalDataThreshold: 1024, cacheDir });
    assert.equal(again.stats.reusedCache, true);
    assert.deepEqual((await again.run(feeds)).y.data, a.y.data);
    await again.release();

    const other = await G.compile(build(2), { externalDataThreshold: 1024, cacheDir });
    assert.equal(other.stats.reusedCache, false, 'different weights must not hit the same cache entry');
    assert.equal(readdirSync(cacheDir).length, 2);
    await other.release();
    await inMemory.release();
  });

  it('refuses a large model without a cache directory', () => {
    const g = new G.Graph('nocache');
    const x = g.input('x', 'float32', [4]);
    g.output('y', G.mul(x, g.weight('w', 'float32', [4], memoryWeight(new Float32Array(4)))));
    assert.throws(() => G.emitModel(g, { externalDataThreshold: 1 }), /cache directory/);
  });
});

describe('bundles: graphs over the same weights in one session', () => {
  const weight = memoryWeight(Float32Array.from({ length: 8 * 8 * 9 }, (_, i) => Math.sin(i) / 8));
  const forward = () => {
    const g = new G.Graph('forward');
    const x = g.input('x', 'float32', ['B', 8, 'H', 'W']);
    g.output('y', G.conv2d(x, g.weight('w', 'float32', [8, 8, 3, 3], weight), undefined, { padding: 1 }));
    return g;
  };
  const gradient = () => {
    const g = new G.Graph('gradient');
    const z = g.input('z', 'float32', [1, 8, 'H', 'W']);
    const y = G.conv2d(z, g.weight('w', 'float32', [8, 8, 3, 3], weight), undefined, { padding: 1 });
    const loss = G.reduceSum(G.mul(y, y));
    const [dz] = G.grad([loss], [z]);
    g.output('loss', loss).output('dz', dz);
    return g;
  };
  const field = (dims: number[], seed: number) =>
    G.hostTensor(
      'float32',
      Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, (_, i) => Math.cos(i * seed)),
      dims,
    );

  it('runs each graph alone with the results of separate sessions, from one copy of the weights', async () => {
    const cacheDir = join(tmp, 'bundle');
    const [f, g] = await G.compileBundle('pair', [forward(), gradient()], {
      externalDataThreshold: 1024,
      cacheDir,
    });
    const [dir] = readdirSync(cacheDir);
    assert.equal(
      statSync(join(cacheDir, dir, 'weights.bin')).size,
      8 * 8 * 9 * 4,
      'the weight is stored once',
    );
    assert.equal(openSessionCount(), 1 + sessionsBefore);
    const alone = [await G.compile(forward()), await G.compile(gradient())];
    const x = field([2, 8, 5, 6], 1);
    const z = field([1, 8, 5, 6], 2);
    assert.deepEqual((await f.run({ x })).y.dims, [2, 8, 5, 6]);
    assertClose((await f.run({ x })).y, (await alone[0].run({ x })).y);
    const both = await g.run({ z });
    const expected = await alone[1].run({ z });
    assertClose(both.loss, expected.loss);
    assertClose(both.dz, expected.dz);
    assert.deepEqual(Object.keys(await g.run({ z }, ['dz'])), ['dz']);
    assert.throws(() => f.check({ z } as never), /has no input 'z'/);
    const y = (await f.run({ x })).y;
    for (const m of [f, g, ...alone]) await m.release();
    assert.equal(openSessionCount(), sessionsBefore, 'the session closes with its last graph');
    // again, from the cached model
    const [f2, g2] = await G.compileBundle('pair', [forward(), gradient()], {
      externalDataThreshold: 1024,
      cacheDir,
    });
    assert.equal(f2.stats.reusedCache, true);
    assertClose((await f2.run({ x })).y, y);
    assertClose((await g2.run({ z })).dz, expected.dz);
    await f2.release();
    await g2.release();
  });

  it('refuses two graphs that give one weight name different values', () => {
    const other = new G.Graph('other');
    const x = other.input('x', 'float32', [8]);
    other.output('y', G.mul(x, other.weight('w', 'float32', [8], memoryWeight(new Float32Array(8)))));
    assert.throws(() => G.emitBundle('clash', [forward(), other]), /different weights named 'w'/);
  });

  let sessionsBefore = 0;
  before(() => {
    sessionsBefore = openSessionCount();
  });
});

describe('runner', () => {
  const sumModel = () => {
    const g = new G.Graph('runner');
    const x = g.input('x', 'float32', ['B', 3, 'H', 'W']);
    const y = g.input('y', 'float32', ['B', 3]);
    g.output('s', G.add(G.reduceSum(x, [2, 3]), y));
    return g;
  };

  it('shares one session between compiles of the same graph and releases it', async () => {
    const before = openSessionCount();
    const a = await G.compile(sumModel());
    const b = await G.compile(sumModel());
    assert.equal(openSessionCount(), before + 1);
    await a.release();
    assert.equal(openSessionCount(), before + 1);
    await b.release();
    assert.equal(openSessionCount(), before);
    await assert.rejects(a.run({}), /released/);
  });

  it('names the input in shape, dtype and binding errors', async () => {
    const m = await G.compile(sumModel());
    const x = G.hostTensor('float32', new Float32Array(2 * 3 * 4 * 5), [2, 3, 4, 5]);
    const y = G.hostTensor('float32', new Float32Array(6), [2, 3]);
    assert.equal((await m.run({ x, y })).s.dims.join(','), '2,3');
    await assert.rejects(m.run({ x }), /input 'y' .* is missing/);
    await assert.rejects(m.run({ x, y, z: y }), /no input 'z'/);
    await assert.rejects(
      m.run({ x, y: G.hostTensor('float64', new Float64Array(6), [2, 3]) }),
      /input 'y' must be float32, got float64/,
    );
    await assert.rejects(
      m.run({ x: G.hostTensor('float32', new Float32Array(2 * 4 * 4 * 5), [2, 4, 4, 5]), y }),
      /input 'x' axis 1 must be 3, got 4/,
    );
    await assert.rejects(
      m.run({ x, y: G.hostTensor('float32', new Float32Array(9), [3, 3]) }),
      /dimension B is 2 from input 'x' axis 0 but 3 from input 'y' axis 0/,
    );
    await assert.rejects(m.run({ x, y }, ['nope']), /no output 'nope'/);
    await m.release();
  });

  it('runs float16 graphs', async () => {
    const g = new G.Graph('half');
    const x = g.input('x', 'float16', [4]);
    g.output('y', G.mul(x, 2));
    const m = await G.compile(g);
    const half = Uint16Array.from([1, 2, 3, 4].map(G.float32ToFloat16Bits));
    const out = await m.run({ x: new ort.Tensor('float16', half, [4]) });
    const values = [...(out.y.data as Uint16Array)].map(G.float16BitsToFloat32);
    assert.deepEqual(values, [2, 4, 6, 8]);
    await m.release();
  });
});

describe('build-time errors name the op, the shapes and what to change', () => {
  const g = new G.Graph('errors');
  const a = g.input('a', 'float32', [2, 3]);
  const b = g.input('b', 'float32', [4, 5]);
  const ids = g.input('ids', 'int64', [2]);

  it('matmul inner dimensions', () => {
    assert.throws(
      () => G.matmul(a, b),
      /MatMul: inner dimensions differ \(3 vs 4\).*a float32 \[2,3\], b float32 \[4,5\]/,
    );
  });
  it('broadcasting', () => {
    assert.throws(
      () => G.add(a, b),
      /Add: dimensions 2 and 4 at axis -2 do not broadcast.*a float32 \[2,3\], b float32 \[4,5\].*equal or 1/,
    );
  });
  it('dtype mismatch', () => {
    const h = g.input('h', 'float16', [2, 3]);
    assert.throws(
      () => G.add(a, h),
      /Add: inputs have different dtypes \(float32 and float16\).*Cast one with cast\(\)/,
    );
  });
  it('unknown dtype', () => {
    assert.throws(() => g.input('bad', 'float8' as never, [1]), /unknown dtype "float8"/);
  });
  it('reshape element count', () => {
    assert.throws(() => G.reshape(a, [4, 2]), /Reshape: cannot reshape 6 elements into \[4,2\]/);
  });
  it('conv channel count', () => {
    const x = g.input('x', 'float32', [1, 3, 8, 8]);
    const w = g.input('w', 'float32', [4, 2, 3, 3]);
    assert.throws(() => G.conv2d(x, w), /Conv: x has 3 channels but the weight expects 2/);
  });
  it('gradient with respect to an integer input', () => {
    const y = G.gather(a, ids, 0);
    assert.throws(
      () => G.grad([G.reduceSum(y)], [ids]),
      /cannot differentiate with respect to ids int64 \[2\].*choose a float input/,
    );
  });
  it('a gradient of a non-scalar output without a seed', () => {
    assert.throws(() => G.grad([G.mul(a, 2)], [a]), /is not a scalar; reduce it or give a seed/);
  });
  it('a cycle in the node list', () => {
    const c = new G.Graph('cycle');
    const x = c.input('x', 'float32', [2]);
    const y = G.sin(x);
    const z = G.cos(y);
    c.output('z', z);
    c.nodes.reverse(); // the consumer now comes before its producer
    assert.throws(() => G.emitModel(c), /Cos: its input .* is produced after it — the graph has a cycle/);
  });
  it('a symbolic dimension no input declares', () => {
    const c = new G.Graph('orphan');
    const x = c.input('x', 'float32', [6]);
    c.output('y', G.expand(x, ['K', 6]));
    assert.throws(() => G.emitModel(c), /symbolic dimension 'K' is not the size of any input axis/);
  });
  it('tensors from another graph', () => {
    const other = new G.Graph('other');
    const o = other.input('o', 'float32', [2, 3]);
    assert.throws(() => G.add(a, o), /Add: input 1 belongs to another graph/);
  });
});
