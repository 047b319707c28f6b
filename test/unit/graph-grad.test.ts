// Finite-difference checks of every differentiable op's VJP, on shapes with broadcasting,
// size-1 axes and symbolic dimensions; an op added to engine/graph/ops without a case here fails.

import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import type { Graph, Tensor } from '../../engine/graph/index.ts';
import * as G from '../../engine/graph/index.ts';
import { gradCheck, type InputSpec, toleranceFor } from '../gradcheck.ts';

const positive = (_: number, r: () => number) => 0.5 + r() * 1.5;
const awayFromZero = (_: number, r: () => number) => (r() < 0.5 ? -1 : 1) * (0.3 + r());

interface Case {
  name: string;
  build: (g: Graph, x: Tensor[]) => Tensor;
  inputs: InputSpec[];
}

const f = (name: string, shape: (number | string)[], extra: Partial<InputSpec> = {}): InputSpec => ({
  name,
  shape,
  ...extra,
});

const cases: Case[] = [
  // elementwise binary, with broadcasting and size-1 axes
  { name: 'add broadcast', build: (_, [a, b]) => G.add(a, b), inputs: [f('a', [2, 1, 3]), f('b', [4, 3])] },
  { name: 'sub scalar-shaped', build: (_, [a, b]) => G.sub(a, b), inputs: [f('a', [1]), f('b', [2, 3])] },
  { name: 'mul broadcast', build: (_, [a, b]) => G.mul(a, b), inputs: [f('a', [3, 1]), f('b', [1, 4])] },
  {
    name: 'div broadcast',
    build: (_, [a, b]) => G.div(a, b),
    inputs: [f('a', [2, 3]), f('b', [3], { init: awayFromZero })],
  },
  {
    name: 'pow',
    build: (_, [a, b]) => G.pow(a, b),
    inputs: [f('a', [2, 3], { init: positive }), f('b', [3])],
  },
  // unary
  { name: 'neg', build: (_, [x]) => G.neg(x), inputs: [f('x', [2, 3])] },
  { name: 'abs', build: (_, [x]) => G.abs(x), inputs: [f('x', [2, 3], { init: awayFromZero })] },
  { name: 'exp', build: (_, [x]) => G.exp(x), inputs: [f('x', [5])] },
  { name: 'log', build: (_, [x]) => G.log(x), inputs: [f('x', [5], { init: positive })] },
  { name: 'sqrt', build: (_, [x]) => G.sqrt(x), inputs: [f('x', [5], { init: positive })] },
  { name: 'sin', build: (_, [x]) => G.sin(x), inputs: [f('x', [5])] },
  { name: 'cos', build: (_, [x]) => G.cos(x), inputs: [f('x', [5])] },
  { name: 'erf', build: (_, [x]) => G.erf(x), inputs: [f('x', [5])] },
  { name: 'tanh', build: (_, [x]) => G.tanh(x), inputs: [f('x', [5])] },
  { name: 'sigmoid', build: (_, [x]) => G.sigmoid(x), inputs: [f('x', [5])] },
  { name: 'reciprocal', build: (_, [x]) => G.reciprocal(x), inputs: [f('x', [5], { init: awayFromZero })] },
  { name: 'relu', build: (_, [x]) => G.relu(x), inputs: [f('x', [6], { init: awayFromZero })] },
  { name: 'silu', build: (_, [x]) => G.silu(x), inputs: [f('x', [2, 4])] },
  { name: 'gelu (erf)', build: (_, [x]) => G.gelu(x), inputs: [f('x', [2, 4])] },
  { name: 'gelu (tanh)', build: (_, [x]) => G.gelu(x, 'tanh'), inputs: [f('x', [2, 4])] },
  { name: 'quick gelu', build: (_, [x]) => G.quickGelu(x), inputs: [f('x', [2, 4])] },
  {
    name: 'where (mask input)',
    build: (_, [c, a, b]) => G.where(c, a, b),
    inputs: [
      f('c', [2, 3], { dtype: 'bool', wrt: false, init: (i) => i % 2 === 0 }),
      f('a', [2, 3]),
      f('b', [3]),
    ],
  },
  {
    name: 'cast round trip',
    build: (_, [x]) => G.cast(G.mul(G.cast(x, 'float64'), 2), x.dtype),
    inputs: [f('x', [4])],
  },
  // matrix products
  {
    name: 'matmul batched broadcast',
    build: (_, [a, b]) => G.matmul(a, b),
    inputs: [f('a', [2, 1, 3, 4]), f('b', [5, 4, 2])],
  },
  {
    name: 'matmul with 2-D right operand',
    build: (_, [a, b]) => G.matmul(a, b),
    inputs: [f('a', [2, 3, 4]), f('b', [4, 5])],
  },
  {
    name: 'gemm transA transB + C',
    build: (_, [a, b, c]) => G.gemm(a, b, { c, alpha: 0.7, beta: 1.3, transA: true, transB: true }),
    inputs: [f('a', [4, 3]), f('b', [5, 4]), f('c', [5])],
  },
  {
    name: 'gemm plain',
    build: (_, [a, b, c]) => G.gemm(a, b, { c }),
    inputs: [f('a', [3, 4]), f('b', [4, 5]), f('c', [3, 1])],
  },
  {
    name: 'linear on symbolic batch',
    build: (_, [x, w, b]) => G.linear(x, w, b),
    inputs: [f('x', ['B', 'N', 4], { dims: [2, 3, 4] }), f('w', [6, 4]), f('b', [6])],
  },
  // convolution and resampling
  {
    name: 'conv2d stride 1 pad 1 with bias',
    build: (_, [x, w, b]) => G.conv2d(x, w, b, { padding: 1 }),
    inputs: [f('x', [2, 3, 5, 5]), f('w', [4, 3, 3, 3]), f('b', [4])],
  },
  {
    name: 'conv2d stride 2 (odd size)',
    build: (_, [x, w]) => G.conv2d(x, w, undefined, { stride: 2, padding: 1 }),
    inputs: [f('x', [1, 2, 7, 7]), f('w', [3, 2, 3, 3])],
  },
  {
    name: 'conv2d stride 2 symbolic size',
    build: (_, [x, w]) => G.conv2d(x, w, undefined, { stride: 2, padding: 1 }),
    inputs: [f('x', ['B', 2, 'H', 'W'], { dims: [1, 2, 6, 8] }), f('w', [3, 2, 3, 3], { wrt: false })],
  },
  {
    name: 'conv2d dilation 2',
    build: (_, [x, w]) => G.conv2d(x, w, undefined, { padding: 2, dilation: 2 }),
    inputs: [f('x', [1, 2, 6, 6]), f('w', [2, 2, 3, 3])],
  },
  {
    name: 'conv2d groups 2 (input gradient)',
    build: (_, [x, w]) => G.conv2d(x, w, undefined, { padding: 1, group: 2 }),
    inputs: [f('x', [1, 4, 4, 4]), f('w', [6, 2, 3, 3], { wrt: false })],
  },
  {
    name: 'conv2d 3×2 kernel, uneven pads',
    build: (_, [x, w]) => G.conv2d(x, w, undefined, { padding: [1, 0, 0, 1] }),
    inputs: [f('x', [1, 2, 5, 4]), f('w', [3, 2, 3, 2])],
  },
  {
    name: 'conv2d 1×1, symbolic size',
    build: (_, [x, w, b]) => G.conv2d(x, w, b),
    inputs: [
      f('x', ['B', 3, 'H', 'W'], { dims: [2, 3, 3, 5] }),
      f('w', [4, 3, 1, 1], { wrt: false }),
      f('b', [4]),
    ],
  },
  {
    name: 'conv2d padding wider than the kernel (transposed convolution)',
    build: (_, [x, w]) => G.conv2d(x, w, undefined, { padding: 3 }),
    inputs: [f('x', [1, 2, 4, 4]), f('w', [2, 2, 3, 3])],
  },
  { name: 'upsample nearest 2x', build: (_, [x]) => G.upsampleNearest2x(x), inputs: [f('x', [1, 2, 3, 4])] },
  {
    name: 'upsample nearest 2x symbolic',
    build: (_, [x]) => G.upsampleNearest2x(x),
    inputs: [f('x', ['B', 2, 'H', 'W'], { dims: [2, 2, 3, 2] })],
  },
  // normalisation and softmax
  { name: 'softmax last axis', build: (_, [x]) => G.softmax(x, -1), inputs: [f('x', [2, 5])] },
  { name: 'softmax axis 1', build: (_, [x]) => G.softmax(x, 1), inputs: [f('x', [2, 4, 3])] },
  {
    name: 'layer norm',
    build: (_, [x, w, b]) => G.layerNorm(x, w, b, 1e-5),
    inputs: [f('x', [2, 3, 6]), f('w', [6]), f('b', [6])],
  },
  {
    name: 'group norm',
    build: (_, [x, w, b]) => G.groupNorm(x, w, b, 2, 1e-5),
    inputs: [f('x', [2, 4, 3, 3]), f('w', [4]), f('b', [4])],
  },
  {
    name: 'group norm symbolic spatial',
    build: (_, [x, w, b]) => G.groupNorm(x, w, b, 2, 1e-6),
    inputs: [f('x', ['B', 4, 'H', 'W'], { dims: [1, 4, 2, 3] }), f('w', [4]), f('b', [4])],
  },
  // shape ops
  { name: 'reshape', build: (_, [x]) => G.reshape(x, [3, -1]), inputs: [f('x', [2, 3, 2])] },
  {
    name: 'reshape symbolic',
    build: (_, [x]) => G.reshape(x, ['B', -1]),
    inputs: [f('x', ['B', 'H', 3], { dims: [2, 4, 3] })],
  },
  { name: 'transpose', build: (_, [x]) => G.transpose(x, [2, 0, 1]), inputs: [f('x', [2, 3, 4])] },
  {
    name: 'concat',
    build: (_, [a, b, c]) => G.concat([a, b, c], 1),
    inputs: [f('a', [2, 1, 3]), f('b', [2, 2, 3]), f('c', [2, 3, 3])],
  },
  {
    name: 'concat symbolic batch',
    build: (_, [a, b]) => G.concat([a, b], 0),
    inputs: [f('a', ['B', 3], { dims: [2, 3] }), f('b', ['B', 3], { dims: [2, 3] })],
  },
  { name: 'slice', build: (_, [x]) => G.slice(x, 1, 1, 3), inputs: [f('x', [2, 4, 3])] },
  { name: 'pad one axis', build: (_, [x]) => G.padAxis(x, 1, 2, 1), inputs: [f('x', [2, 3, 2])] },
  {
    name: 'pad beside a symbolic batch',
    build: (_, [x]) => G.mul(G.padAxis(x, 1, 1, 2), 3),
    inputs: [f('x', ['B', 3], { dims: [2, 3] })],
  },
  {
    name: 'split, one part used',
    build: (_, [x]) => G.mul(G.split(x, 1, [1, 3])[1], 2),
    inputs: [f('x', [2, 4])],
  },
  {
    name: 'split, both parts used',
    build: (_, [x]) => {
      const [a, b] = G.split(x, -1, 2);
      return G.mul(a, G.gelu(b)); // GEGLU
    },
    inputs: [f('x', [2, 6])],
  },
  {
    name: 'gather with repeated indices',
    build: (_, [x, i]) => G.gather(x, i, 1),
    inputs: [
      f('x', [2, 4, 3]),
      f('i', [2, 3], { dtype: 'int64', wrt: false, init: (k) => [0, 2, 2, 3, 0, 0][k] }),
    ],
  },
  { name: 'expand', build: (_, [x]) => G.expand(x, [2, 3, 4]), inputs: [f('x', [3, 1])] },
  { name: 'unsqueeze', build: (_, [x]) => G.mul(G.unsqueeze(x, [0, 2]), 3), inputs: [f('x', [2, 3])] },
  { name: 'squeeze', build: (_, [x]) => G.mul(G.squeeze(x, [1]), 3), inputs: [f('x', [2, 1, 3])] },
  {
    name: 'scatter add',
    build: (_, [d, i, u]) => G.scatterAdd(d, i, u),
    inputs: [
      f('d', [4, 3]),
      f('i', [3, 1], { dtype: 'int64', wrt: false, init: (k) => [1, 3, 1][k] }),
      f('u', [3, 3]),
    ],
  },
  // reductions
  { name: 'reduce sum axes', build: (_, [x]) => G.reduceSum(x, [0, 2]), inputs: [f('x', [2, 3, 4])] },
  { name: 'reduce mean keepdims', build: (_, [x]) => G.reduceMean(x, -1, true), inputs: [f('x', [2, 3, 4])] },
  {
    name: 'reduce mean symbolic',
    build: (_, [x]) => G.reduceMean(x, [1, 2]),
    inputs: [f('x', [2, 'H', 'W'], { dims: [2, 3, 5] })],
  },
  { name: 'reduce max', build: (_, [x]) => G.reduceMax(x, 1), inputs: [f('x', [3, 5])] },
  { name: 'reduce min keepdims', build: (_, [x]) => G.reduceMin(x, 0, true), inputs: [f('x', [3, 5])] },
  // attention: both outputs, so the VJP's probability path (CLoRA differentiates the maps) is checked too
  {
    name: 'attention, through the result',
    build: (_, [q, k, v]) => G.attention(q, k, v).out,
    inputs: [f('q', [2, 2, 3, 4]), f('k', [2, 2, 5, 4]), f('v', [2, 2, 5, 3])],
  },
  {
    name: 'attention, through the probabilities',
    build: (_, [q, k, v]) => G.attention(q, k, v).probs,
    inputs: [f('q', [1, 2, 3, 4]), f('k', [1, 2, 5, 4]), f('v', [1, 2, 5, 3])],
  },
  {
    name: 'attention, through both',
    build: (_, [q, k, v]) => {
      const { out, probs } = G.attention(q, k, v);
      // Rows of probs sum to 1: square them so their part of the gradient is not zero.
      return G.add(G.reduceSum(out, -1, true), G.reduceSum(G.mul(probs, probs), -1, true));
    },
    inputs: [
      f('q', ['B', 2, 'N', 4], { dims: [1, 2, 3, 4] }),
      f('k', ['B', 2, 5, 4], { dims: [1, 2, 5, 4] }),
      f('v', ['B', 2, 5, 3], { dims: [1, 2, 5, 3] }),
    ],
  },
  // memory-efficient attention: query rows in chunks, probabilities recomputed in the VJP
  {
    name: 'chunked attention, 7 query rows in 3 chunks (uneven)',
    build: (_, [q, k, v]) => G.chunkedAttention(q, k, v, 3),
    inputs: [f('q', [2, 2, 7, 4]), f('k', [2, 2, 5, 4]), f('v', [2, 2, 5, 3])],
  },
  {
    name: 'chunked attention, symbolic sizes bound to 5 rows in 2 chunks',
    build: (_, [q, k, v]) => G.chunkedAttention(q, k, v, 2),
    inputs: [
      f('q', ['B', 2, 'N', 4], { dims: [1, 2, 5, 4] }),
      f('k', ['B', 2, 'M', 4], { dims: [1, 2, 6, 4] }),
      f('v', ['B', 2, 'M', 3], { dims: [1, 2, 6, 3] }),
    ],
  },
  // chunking chosen at run time: 4 chunks at most, each up to 24 scores (rows × keys) per head
  {
    name: 'chunked attention, symbolic 9 rows in at most 4 chunks: 3, 3, 3 and a trailing empty one',
    build: (_, [q, k, v]) => G.chunkedAttention(q, k, v, 4),
    inputs: [
      f('q', ['B', 2, 'N', 4], { dims: [1, 2, 9, 4] }),
      f('k', ['B', 2, 'M', 4], { dims: [1, 2, 5, 4] }),
      f('v', ['B', 2, 'M', 3], { dims: [1, 2, 5, 3] }),
    ],
  },
  {
    name: 'chunked attention, symbolic size below the budget: 6 tokens in chunks of 4, 2 and two empty',
    build: (_, [x]) => G.chunkedAttention(x, x, x, { chunks: 4, chunkScores: 24 }),
    inputs: [f('x', ['B', 2, 'N', 3], { dims: [1, 2, 6, 3] })],
  },
  {
    name: 'chunked attention, symbolic size within one chunk: 4 tokens in one chunk and three empty',
    build: (_, [q, k, v]) => G.chunkedAttention(q, k, v, { chunks: 4, chunkScores: 24 }),
    inputs: [
      f('q', ['B', 2, 'N', 3], { dims: [2, 2, 4, 3] }),
      f('k', ['B', 2, 'N', 3], { dims: [2, 2, 4, 3] }),
      f('v', ['B', 2, 'N', 2], { dims: [2, 2, 4, 2] }),
    ],
  },
  {
    name: 'chunked attention, symbolic size past the budget: 14 tokens in 4 larger chunks (4, 4, 4, 2)',
    build: (_, [x]) => G.chunkedAttention(x, x, x, { chunks: 4, chunkScores: 24 }),
    inputs: [f('x', ['B', 1, 'N', 3], { dims: [1, 1, 14, 3] })],
  },
  {
    name: 'chunked attention, self-attention (q = k = v, fan-out into every gradient)',
    build: (_, [x]) => G.chunkedAttention(x, x, x, 4),
    inputs: [f('x', [1, 2, 9, 3])],
  },
  {
    name: 'chunked attention, only q differentiated',
    build: (_, [q, k, v]) => G.chunkedAttention(q, k, v, 2),
    inputs: [
      f('q', [1, 1, 4, 2]),
      f('k', [1, 1, 3, 2], { wrt: false }),
      f('v', [1, 1, 3, 2], { wrt: false }),
    ],
  },
  {
    name: 'chunked multi-head attention',
    build: (_, [q, k, v]) => G.chunkedMultiHeadAttention(q, k, v, 2, 2),
    inputs: [f('q', [2, 3, 4]), f('k', [2, 5, 4]), f('v', [2, 5, 4])],
  },
  {
    name: "fused multi-head attention (onnxruntime's kernel forward, chunked VJP)",
    build: (_, [q, k, v]) => G.fusedMultiHeadAttention(q, k, v, 2, 2),
    inputs: [
      f('q', ['B', 3, 4], { dims: [2, 3, 4] }),
      f('k', ['B', 5, 4], { dims: [2, 5, 4] }),
      f('v', ['B', 5, 6], { dims: [2, 5, 6] }),
    ],
  },
  // composite
  {
    name: 'multi-head attention',
    build: (_, [q, k, v]) => G.multiHeadAttention(q, k, v, 2).out,
    inputs: [f('q', [2, 3, 4]), f('k', [2, 5, 4]), f('v', [2, 5, 4])],
  },
];

describe('VJP rules match central finite differences', () => {
  for (const c of cases) {
    it(c.name, async () => {
      const result = await gradCheck(c.build, c.inputs);
      assert.ok(result.checks.length > 0, 'no input was checked');
      const tol = toleranceFor(result.dtype);
      for (const k of result.checks) {
        assert.ok(
          k.error <= tol * k.scale + (result.dtype === 'float64' ? 1e-9 : 1e-4),
          `${c.name} [${result.dtype}] d/d${k.name}: analytic ${k.analytic} vs numeric ${k.numeric}`,
        );
      }
    });
  }
});

/** Ops no gradient flows through, and why; every other op needs a case above. */
const WITHOUT_GRADIENT: Readonly<Record<string, string>> = {
  Equal: 'a comparison: boolean output',
  Less: 'a comparison: boolean output',
  Greater: 'a comparison: boolean output',
  Sign: 'zero almost everywhere',
  Count: 'an element count of a shape',
  ConvTranspose: "Conv's VJP builds it (checked through the conv2d cases); nothing differentiates twice",
  ChunkedAttentionGrad: "ChunkedAttention's VJP (checked through the chunked attention cases)",
};

/** The ONNX-level name of every op declared in engine/graph/ops (`const XOp = …`). */
function declaredOps(): Map<string, string> {
  const dir = new URL('../../engine/graph/ops/', import.meta.url);
  const ops = new Map<string, string>();
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.ts'))) {
    const source = readFileSync(new URL(file, dir), 'utf8');
    for (const [, constant, rest] of source.matchAll(/^const (\w+Op)\b[^=]*=\s*([^;]*)/gm)) {
      // an object literal's `name: '…'`, or a factory's first argument (`binaryOp('Add', …)`)
      const name = /^\{\s*name:\s*'(\w+)'/.exec(rest)?.[1] ?? /^\w+\(\s*'(\w+)'/.exec(rest)?.[1];
      assert.ok(
        name,
        `${file}: cannot read the op name of ${constant}; declare it as { name: '…' } or f('…')`,
      );
      ops.set(name, `${file} ${constant}`);
    }
  }
  return ops;
}

/** Op names in the forward graphs the cases build (their VJPs are what the cases check). */
function opsWithCases(): Set<string> {
  const seen = new Set<string>();
  for (const c of cases) {
    const g = new G.Graph(c.name);
    const inputs = c.inputs.map((s) => g.input(s.name, s.dtype ?? 'float32', s.shape));
    c.build(g, inputs);
    for (const n of g.nodes) seen.add(n.op.name);
  }
  return seen;
}

describe('every op has a gradient case', () => {
  it('each op in engine/graph/ops is checked above or says why it has no gradient', () => {
    const declared = declaredOps();
    assert.ok(declared.size > 40, `found only ${declared.size} ops: the scan of engine/graph/ops is broken`);
    const covered = opsWithCases();
    const missing = [...declared]
      .filter(([name]) => !covered.has(name) && !(name in WITHOUT_GRADIENT))
      .map(([name, where]) => `${name} (${where})`);
    assert.deepEqual(missing, [], `ops without a finite-difference case: ${missing.join(', ')}`);
    for (const name of Object.keys(WITHOUT_GRADIENT)) assert.ok(declared.has(name), `${name} is not an op`);
  });
});
