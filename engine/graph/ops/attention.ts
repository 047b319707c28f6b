// Softmax and multi-head scaled dot-product attention. Attention is a composite of
// MatMul and Softmax so its probabilities stay addressable (CLoRA reads them) and its
// gradient comes from the primitives' rules.

import { dimDiv, dimStr, isStatic } from '../dim.ts';
import { apply, apply1, GraphError, type OpDef, type Tensor } from '../graph.ts';
import { normAxis, requireFloat } from '../rules.ts';
import { type ChunkAttrs, checkQkv, chunkedAttention } from './chunked-attention.ts';
import { add, mul, sub } from './elementwise.ts';
import { matmul } from './matmul.ts';
import { reduceSum } from './reduce.ts';
import { concat, expand, reshape, transpose, transposeLast2 } from './shape.ts';

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

/**
 * softmax(Q·Kᵀ)·V over the last two axes of [B, heads, N, d] tensors (Q already scaled), as
 * one op with two outputs, the result and the probabilities. Its VJP uses the FlashAttention
 * identity rowsum(dP ⊙ P) = rowsum(dO ⊙ O): the softmax gradient then needs N×d work for that
 * sum instead of another pass over the N×N probabilities.
 */
const AttentionOp: OpDef<Record<string, never>> = {
  name: 'Attention',
  infer(inputs) {
    const { b, h, nq, nk, dv } = checkQkv(inputs);
    return [
      { dtype: inputs[0].dtype, shape: [b, h, nq, dv] },
      { dtype: inputs[0].dtype, shape: [b, h, nq, nk] },
    ];
  },
  emit(n, out) {
    const [q, k, v] = n.inputs.map(out.name);
    const kt = out.fresh('kt');
    out.node('Transpose', [k], [kt], { perm: { ints: [0, 1, 3, 2] } });
    const scores = out.fresh('scores');
    out.node('MatMul', [q, kt], [scores]);
    const probs = out.name(n.outputs[1]);
    out.node('Softmax', [scores], [probs], { axis: { int: -1 } });
    out.node('MatMul', [probs, v], [out.name(n.outputs[0])]);
  },
  vjp(n, [gOut, gProbs], wanted) {
    const [q, k, v] = n.inputs;
    const [o, p] = n.outputs;
    if (!gOut && !gProbs) return [undefined, undefined, undefined];
    // dScores = P ⊙ (dP − rowSum) with dP = gOut·Vᵀ (+ gProbs) and rowSum = rowsum(dP ⊙ P).
    let rowSum = gOut ? reduceSum(mul(gOut, o), -1, true) : undefined;
    if (gProbs) {
      const fromProbs = reduceSum(mul(gProbs, p), -1, true);
      rowSum = rowSum ? add(rowSum, fromProbs) : fromProbs;
    }
    let centred: Tensor;
    if (gOut) {
      // gOut·Vᵀ − rowSum·1ᵀ = [gOut | rowSum]·[V | −1]ᵀ: the subtraction rides in the product,
      // sparing an N×N broadcast op (onnxruntime's CPU broadcast along the last axis is slow).
      const minusOnes = expand(p.graph.scalar(-1, v.dtype), [...v.shape.slice(0, -1), 1]);
      centred = matmul(concat([gOut, rowSum!], -1), transposeLast2(concat([v, minusOnes], -1)));
      if (gProbs) centred = add(centred, gProbs);
    } else centred = sub(gProbs!, rowSum!);
    const dScores = mul(p, centred);
    return [
      wanted[0] ? matmul(dScores, k) : undefined,
      wanted[1] ? matmul(transposeLast2(dScores), q) : undefined,
      wanted[2] && gOut ? matmul(transposeLast2(p), gOut) : undefined,
    ];
  },
};

/** softmax(q·kᵀ)·v for [B, heads, N, d] inputs (q already scaled): { out, probs }. */
export function attention(q: Tensor, k: Tensor, v: Tensor): AttentionResult {
  const [out, probs] = apply(AttentionOp, [q, k, v], {});
  return { out, probs };
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
  const [qh, kh, vh] = headsOf(q, k, v, heads);
  const { out, probs } = attention(qh, kh, vh);
  return { out: mergeHeads(out), probs };
}

/** Multi-head attention without its probabilities, over chunks of query rows (memory-efficient). */
export function chunkedMultiHeadAttention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  heads: number,
  chunking: number | ChunkAttrs,
): Tensor {
  const [qh, kh, vh] = headsOf(q, k, v, heads);
  return mergeHeads(chunkedAttention(qh, kh, vh, chunking));
}

function headsOf(q: Tensor, k: Tensor, v: Tensor, heads: number): [Tensor, Tensor, Tensor] {
  const c = q.shape[2];
  const headDim = dimDiv(c, heads);
  if (!isStatic(headDim)) throw new GraphError(`attention: head size ${dimStr(headDim)} must be static`);
  return [splitHeads(mul(q, 1 / Math.sqrt(headDim)), heads), splitHeads(k, heads), splitHeads(v, heads)];
}
