// Softmax and multi-head scaled dot-product attention. Attention is a composite of
// MatMul and Softmax so its probabilities stay addressable (CLoRA reads them) and its
// gradient comes from the primitives' rules.

import { dimDiv, dimStr, isStatic } from '../dim.ts';
import { apply1, GraphError, type OpDef, type Tensor } from '../graph.ts';
import { normAxis, requireFloat } from '../rules.ts';
import { mul, sub } from './elementwise.ts';
import { matmul } from './matmul.ts';
import { reduceSum } from './reduce.ts';
import { reshape, transpose, transposeLast2 } from './shape.ts';

const SoftmaxOp: OpDef<{ axis: number }> = {
  name: 'Softmax',
  infer([x]) {
    requireFloat(x);
    return [{ dtype: x.dtype, shape: x.shape }];
  },
  emit: (n, out) =>
    out.node('Softmax', [out.name(n.inputs[0])], [out.name(n.outputs[0])], { axis: { int: n.attrs.axis } }),
  vjp(n, [g], wanted) {
    if (!g || !wanted[0]) return [undefined];
    const y = n.outputs[0];
    const gy = mul(g, y);
    return [sub(gy, mul(y, reduceSum(gy, n.attrs.axis, true)))];
  },
};

export function softmax(x: Tensor, axis = -1): Tensor {
  return apply1(SoftmaxOp, [x], { axis: normAxis(axis, x.rank) });
}

/** [B, N, heads·d] → [B, heads, N, d] */
export function splitHeads(x: Tensor, heads: number): Tensor {
  const [b, n, c] = x.shape;
  if (!isStatic(c) || c % heads !== 0) {
    throw new GraphError(
      `splitHeads: ${dimStr(c)} channels do not split into ${heads} heads (${x.describe()})`,
    );
  }
  return transpose(reshape(x, [b, n, heads, c / heads]), [0, 2, 1, 3]);
}

/** [B, heads, N, d] → [B, N, heads·d] */
export function mergeHeads(x: Tensor): Tensor {
  const [b, h, n, d] = x.shape;
  return reshape(transpose(x, [0, 2, 1, 3]), [b, n, (h as number) * (d as number)]);
}

export interface AttentionResult {
  out: Tensor;
  /** softmax(QKᵀ·scale), [B, heads, Nq, Nk] */
  probs: Tensor;
}

/**
 * Multi-head attention on projected q [B, Nq, C], k/v [B, Nk, C]; scale = head_dim^-½.
 * Q is scaled before the product (Nq·d multiplies instead of Nq·Nk).
 */
export function multiHeadAttention(q: Tensor, k: Tensor, v: Tensor, heads: number): AttentionResult {
  const c = q.shape[2];
  const headDim = dimDiv(c, heads);
  if (!isStatic(headDim)) throw new GraphError(`attention: head size ${dimStr(headDim)} must be static`);
  const qh = splitHeads(mul(q, 1 / Math.sqrt(headDim)), heads);
  const kh = splitHeads(k, heads);
  const vh = splitHeads(v, heads);
  const probs = softmax(matmul(qh, transposeLast2(kh)), -1);
  return { out: mergeHeads(matmul(probs, vh)), probs };
}
