// Matrix products: batched, broadcasting MatMul; Gemm; and linear(), the PyTorch
// Linear layer (weight [out, in]) as Gemm with transB so forward and backward share one
// copy of the weight.

import { type Dim, dimEq, dimStr } from '../dim.ts';
import { apply1, GraphError, type OpDef, RuleError, type Tensor } from '../graph.ts';
import { broadcastShapes, requireFloat, requireRank, sameDType } from '../rules.ts';
import { mul } from './elementwise.ts';
import { sumTo } from './reduce.ts';
import { reshape, transposeLast2 } from './shape.ts';

const MatMulOp: OpDef<Record<string, never>> = {
  name: 'MatMul',
  infer([a, b]) {
    const dtype = sameDType([a, b]);
    requireFloat(a);
    requireRank(a, [2, 8], 'the left input');
    requireRank(b, [2, 8], 'the right input');
    const [m, k] = a.shape.slice(-2);
    const [k2, n] = b.shape.slice(-2);
    if (!dimEq(k, k2)) {
      throw new RuleError(
        `inner dimensions differ (${dimStr(k)} vs ${dimStr(k2)})`,
        'A is [..., M, K], B is [..., K, N].',
      );
    }
    const batch = broadcastShapes(a.shape.slice(0, -2), b.shape.slice(0, -2));
    return [{ dtype, shape: [...batch, m, n] }];
  },
  emit: (n, out) => out.node('MatMul', n.inputs.map(out.name), [out.name(n.outputs[0])]),
  vjp(n, [g], wanted) {
    if (!g) return [undefined, undefined];
    const [a, b] = n.inputs;
    let gb: Tensor | undefined;
    if (wanted[1]) {
      if (b.rank === 2 && a.rank > 2) {
        // Fold the batch into the rows: one [K, rows] × [rows, N] product.
        const k = a.shape[a.rank - 1];
        const cols = g.shape[g.rank - 1];
        gb = matmul(transposeLast2(reshape(a, [-1, k])), reshape(g, [-1, cols]));
      } else gb = sumTo(matmul(transposeLast2(a), g), b.shape);
    }
    return [wanted[0] ? sumTo(matmul(g, transposeLast2(b)), a.shape) : undefined, gb];
  },
};

export function matmul(a: Tensor, b: Tensor): Tensor {
  return apply1(MatMulOp, [a, b], {});
}

interface GemmAttrs {
  alpha: number;
  beta: number;
  transA: boolean;
  transB: boolean;
}

const GemmOp: OpDef<GemmAttrs> = {
  name: 'Gemm',
  infer(inputs, { transA, transB }) {
    const [a, b, c] = inputs;
    const dtype = sameDType(inputs);
    requireFloat(a);
    requireRank(a, 2, 'A');
    requireRank(b, 2, 'B');
    const [m, k] = transA ? [a.shape[1], a.shape[0]] : a.shape;
    const [k2, n] = transB ? [b.shape[1], b.shape[0]] : b.shape;
    if (!dimEq(k, k2)) throw new RuleError(`inner dimensions differ (${dimStr(k)} vs ${dimStr(k2)})`);
    const shape: Dim[] = [m, n];
    if (c) {
      requireRank(c, [0, 2], 'C');
      const full = broadcastShapes(shape, c.shape);
      if (!full.every((d, i) => dimEq(d, shape[i]))) throw new RuleError('C does not broadcast to [M, N]');
    }
    return [{ dtype, shape }];
  },
  emit(n, out) {
    const { alpha, beta, transA, transB } = n.attrs;
    out.node('Gemm', n.inputs.map(out.name), [out.name(n.outputs[0])], {
      alpha: { float: alpha },
      beta: { float: beta },
      transA: { int: transA ? 1 : 0 },
      transB: { int: transB ? 1 : 0 },
    });
  },
  vjp(n, [g], wanted) {
    if (!g) return [undefined, undefined, undefined];
    const [a, b, c] = n.inputs;
    const { alpha, beta, transA, transB } = n.attrs;
    // Y = alpha·op(A)·op(B) + beta·C
    const ga = !wanted[0]
      ? undefined
      : transA
        ? gemm(b, g, { alpha, transA: transB, transB: true })
        : gemm(g, b, { alpha, transB: !transB });
    const gb = !wanted[1]
      ? undefined
      : transB
        ? gemm(g, a, { alpha, transA: true, transB: transA })
        : gemm(a, g, { alpha, transA: !transA });
    const gc = c && wanted[2] ? sumTo(beta === 1 ? g : mul(g, beta), c.shape) : undefined;
    return [ga, gb, gc];
  },
};

export function gemm(a: Tensor, b: Tensor, opts: Partial<GemmAttrs> & { c?: Tensor } = {}): Tensor {
  const attrs: GemmAttrs = {
    alpha: opts.alpha ?? 1,
    beta: opts.beta ?? 1,
    transA: opts.transA ?? false,
    transB: opts.transB ?? false,
  };
  return apply1(GemmOp, opts.c ? [a, b, opts.c] : [a, b], attrs);
}

/** y = x·Wᵀ + b for x [..., in], W [out, in] (PyTorch's Linear layout). */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor): Tensor {
  if (weight.rank !== 2) throw new GraphError(`linear: weight must be [out, in], got ${weight.describe()}`);
  const [outF, inF] = weight.shape;
  if (!dimEq(x.shape[x.rank - 1], inF)) {
    throw new GraphError(
      `linear: input ${x.describe()} has ${dimStr(x.shape[x.rank - 1])} features, weight ${weight.describe()} expects ${dimStr(inF)}`,
    );
  }
  const rows = x.rank === 2 ? x : reshape(x, [-1, inF]);
  const y = gemm(rows, weight, { transB: true, c: bias });
  return x.rank === 2 ? y : reshape(y, [...x.shape.slice(0, -1), outF]);
}
