// Graph layer benchmarks:
// - forward+backward ÷ forward for an SD 1.5 transformer block (320 ch, 8 heads, 64×64
//   tokens, context 77×768); goal ≤ 3.0
// - a 2048² MatMul through the graph layer vs a minimal hand-written ONNX model; goal ≥ 0.95
import * as ort from 'onnxruntime-node';
import { isEntryPoint } from '../../engine/entry-point.ts';
import * as G from '../../engine/graph/index.ts';
import { ModelProto } from '../../engine/graph/onnx/onnx.ts';
import { rng } from '../gradcheck.ts';
import { type Report, timeSideBySide } from './harness.ts';

function randomData(n: number, scale: number, seed: number): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => (r() * 2 - 1) * scale);
}

function weight(g: G.Graph, name: string, shape: number[], seed: number): G.Tensor {
  const fanIn = shape.length > 1 ? shape.slice(1).reduce((a, b) => a * b, 1) : shape[0];
  const data = randomData(
    shape.reduce((a, b) => a * b, 1),
    shape.length > 1 ? 1 / Math.sqrt(fanIn) : 0.1,
    seed,
  );
  const bytes = new Uint8Array(data.buffer);
  return g.weight(name, 'float32', shape, {
    byteLength: bytes.byteLength,
    fingerprint: `bench:${name}:${shape.join('x')}:${seed}`,
    read: () => bytes,
  });
}

/** The SD 1.5 BasicTransformerBlock at the first level's width. */
export function transformerBlock(
  g: G.Graph,
  x: G.Tensor,
  ctx: G.Tensor,
  c = 320,
  ctxDim = 768,
  heads = 8,
): G.Tensor {
  let seed = 1;
  const w = (name: string, shape: number[]) => weight(g, name, shape, seed++);
  const ln = (h: G.Tensor, name: string) => G.layerNorm(h, w(`${name}.w`, [c]), w(`${name}.b`, [c]));
  const attention = (h: G.Tensor, context: G.Tensor, name: string, kv: number) => {
    const q = G.linear(h, w(`${name}.q`, [c, c]));
    const k = G.linear(context, w(`${name}.k`, [c, kv]));
    const v = G.linear(context, w(`${name}.v`, [c, kv]));
    const { out } = G.multiHeadAttention(q, k, v, heads);
    return G.linear(out, w(`${name}.o`, [c, c]), w(`${name}.ob`, [c]));
  };
  let h = x;
  const n1 = ln(h, 'norm1');
  h = G.add(h, attention(n1, n1, 'attn1', c));
  h = G.add(h, attention(ln(h, 'norm2'), ctx, 'attn2', ctxDim));
  const [a, gate] = G.split(G.linear(ln(h, 'norm3'), w('ff0', [8 * c, c]), w('ff0b', [8 * c])), -1, 2);
  return G.add(h, G.linear(G.mul(a, G.gelu(gate)), w('ff2', [c, 4 * c]), w('ff2b', [c])));
}

async function transformerRatio(report: Report): Promise<void> {
  const tokens = 64 * 64;
  const build = (withGrad: boolean) => {
    const g = new G.Graph(withGrad ? 'block_fwd_bwd' : 'block_fwd');
    const x = g.input('x', 'float32', ['B', tokens, 320]);
    const ctx = g.input('ctx', 'float32', ['B', 77, 768]);
    const y = transformerBlock(g, x, ctx);
    g.output('y', y);
    if (withGrad) {
      const seed = g.input('dy', 'float32', ['B', tokens, 320]);
      g.output('dx', G.grad([y], [x], [seed])[0]);
    }
    return g;
  };
  const fwd = await G.compile(build(false));
  const both = await G.compile(build(true));
  const x = G.hostTensor('float32', randomData(tokens * 320, 1, 5), [1, tokens, 320]);
  const ctx = G.hostTensor('float32', randomData(77 * 768, 1, 6), [1, 77, 768]);
  const dy = G.hostTensor('float32', randomData(tokens * 320, 1, 7), [1, tokens, 320]);
  const t = await timeSideBySide(
    { fwd: () => fwd.run({ x, ctx }), both: () => both.run({ x, ctx, dy }) },
    { warmup: 1, rounds: 5 },
  );
  report('graph.transformer_block.forward', t.fwd, 'ms');
  report('graph.transformer_block.forward_backward', t.both, 'ms');
  report('graph.transformer_block.fwd_bwd_over_fwd', t.both / t.fwd, 'x', '≤ 3.0');
  await fwd.release();
  await both.release();
}

function handWrittenMatMul(n: number): Uint8Array {
  const value = (name: string) => ({
    name,
    type: { tensorType: { elemType: 1, shape: { dim: [{ dimValue: n }, { dimValue: n }] } } },
  });
  const model: ModelProto = {
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    graph: {
      name: 'matmul',
      node: [{ opType: 'MatMul', input: ['a', 'b'], output: ['c'] }],
      input: [value('a'), value('b')],
      output: [value('c')],
    },
  };
  return ModelProto.encode(model).finish();
}

/** Median GFLOP/s of an n² fp32 MatMul on this machine, through the graph layer. */
export async function matmulCeiling(
  n = 2048,
): Promise<{ ours: number; hand: number; oursMs: number; handMs: number }> {
  const g = new G.Graph('matmul');
  g.output('c', G.matmul(g.input('a', 'float32', [n, n]), g.input('b', 'float32', [n, n])));
  const ours = await G.compile(g);
  const hand = await ort.InferenceSession.create(handWrittenMatMul(n), { graphOptimizationLevel: 'all' });
  const a = G.hostTensor('float32', randomData(n * n, 1, 1), [n, n]);
  const b = G.hostTensor('float32', randomData(n * n, 1, 2), [n, n]);
  const t = await timeSideBySide(
    { ours: () => ours.run({ a, b }), hand: () => hand.run({ a, b }) },
    { warmup: 2, rounds: 9 },
  );
  await ours.release();
  await hand.release();
  const flop = 2 * n ** 3;
  return { ours: flop / t.ours / 1e6, hand: flop / t.hand / 1e6, oursMs: t.ours, handMs: t.hand };
}

export async function run(report: Report): Promise<void> {
  const m = await matmulCeiling();
  report('graph.matmul_2048.gflops', m.ours, 'GFLOP/s');
  report('graph.matmul_2048.hand_written_gflops', m.hand, 'GFLOP/s');
  report('graph.matmul_2048.ours_over_hand_written_speed', m.handMs / m.oursMs, 'x', '≥ 0.95');
  await transformerRatio(report);
}

if (isEntryPoint(import.meta.url)) {
  const { printReport } = await import('./harness.ts');
  await run(printReport);
}
