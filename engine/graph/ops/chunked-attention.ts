// Memory-efficient attention: softmax(Q·Kᵀ)·V computed over chunks of query rows, so no
// more than one chunk's scores and probabilities exist at a time (onnxruntime frees a
// value after its last reader). Its VJP is a second op of the same shape that recomputes
// each chunk's probabilities from Q and K instead of keeping them (FlashAttention's
// backward), with D = rowsum(dO ⊙ O) standing in for rowsum(dP ⊙ P).
//
// A chunk holds whole rows (every key), so recomputing its probabilities is one fused
// Softmax over the recomputed scores — as cheap as exp(S − L) from a saved log-sum-exp,
// and without the broadcast along the last axis that onnxruntime's CPU kernels do slowly.
// The chunk count is static; the chunk bounds are computed at run time from the query
// count, so any size works (chunks differ by at most one row). Each chunk starts only after
// the previous one has produced everything it will produce: a zero derived from those
// outputs' shapes joins the next chunk's start row, so whatever order onnxruntime picks,
// one chunk's intermediates are freed before the next chunk allocates its own.

import { type Dim, dimEq, dimStr, isStatic } from '../dim.ts';
import {
  apply,
  apply1,
  type Node,
  type OnnxWriter,
  type OpDef,
  RuleError,
  type Tensor,
  type TensorType,
} from '../graph.ts';
import { requireFloat } from '../rules.ts';

interface ChunkAttrs {
  /** how many query chunks; 1 computes the whole attention at once */
  chunks: number;
}

/** The shape rule every attention kernel shares: q, k, v [B, heads, N, d] of one float dtype. */
export function checkQkv([q, k, v]: readonly TensorType[]): { b: Dim; h: Dim; nq: Dim; nk: Dim; dv: Dim } {
  requireFloat(q);
  for (const t of [q, k, v])
    if (t.shape.length !== 4) throw new RuleError('q, k and v must be [B, heads, N, d]');
  if (q.dtype !== k.dtype || q.dtype !== v.dtype) throw new RuleError('q, k and v must share a dtype');
  const [b, h, nq, d] = q.shape;
  const [kb, kh, nk, kd] = k.shape;
  const [vb, vh, vn, dv] = v.shape;
  if (![dimEq(b, kb), dimEq(b, vb), dimEq(h, kh), dimEq(h, vh)].every(Boolean)) {
    throw new RuleError('q, k and v must have the same batch and head axes');
  }
  if (!dimEq(d, kd)) throw new RuleError(`q and k head sizes differ (${dimStr(d)} vs ${dimStr(kd)})`);
  if (!dimEq(nk, vn)) throw new RuleError(`k and v lengths differ (${dimStr(nk)} vs ${dimStr(vn)})`);
  return { b, h, nq, nk, dv };
}

function checkChunks(chunks: number, nq: Dim): void {
  if (!Number.isInteger(chunks) || chunks < 1)
    throw new RuleError(`chunks must be a whole number ≥ 1, got ${chunks}`);
  if (isStatic(nq) && chunks > Math.max(nq, 1)) {
    throw new RuleError(`${chunks} chunks are more than the ${nq} query rows`);
  }
}

/**
 * Row ranges [start, end) of each chunk along the query axis, as int64 tensor names:
 * chunk i spans ⌊i·N/c⌋ … ⌊(i+1)·N/c⌋, computed from N at run time when N is symbolic.
 */
function chunkBounds(out: OnnxWriter, rows: Dim, chunks: number): { start: string; end: string }[] {
  const bound = (i: number): string => {
    if (i === 0) return out.ints([0]);
    if (isStatic(rows)) return out.ints([Math.floor((i * rows) / chunks)]);
    const n = out.shape([rows]);
    if (i === chunks) return n;
    const scaled = out.fresh('chunk_bound');
    out.node('Mul', [n, out.ints([i])], [scaled]);
    const b = out.fresh('chunk_bound');
    out.node('Div', [scaled, out.ints([chunks])], [b]);
    return b;
  };
  const bounds = Array.from({ length: chunks + 1 }, (_, i) => bound(i));
  return Array.from({ length: chunks }, (_, i) => ({ start: bounds[i], end: bounds[i + 1] }));
}

/**
 * `bound` made to wait for `outputs`: bound + 0·(their leading sizes). Reading a shape costs
 * nothing, but the value exists only once the producers have run.
 */
function after(out: OnnxWriter, bound: string, outputs: readonly string[]): string {
  if (outputs.length === 0) return bound;
  const sizes = outputs.map((t) => node(out, 'Shape', [t], 'done', { end: { int: 1 } }));
  const sum = sizes.reduce((acc, s) => node(out, 'Add', [acc, s], 'done'));
  const zero = node(out, 'Mul', [sum, out.ints([0])], 'done');
  return node(out, 'Add', [bound, zero], 'chunk_start');
}

/** The rows of `x` [B, heads, N, ·] in one chunk (x itself when there is one chunk). */
function rowsOf(out: OnnxWriter, x: string, range: { start: string; end: string }, chunks: number): string {
  if (chunks === 1) return x;
  const part = out.fresh('chunk');
  out.node('Slice', [x, range.start, range.end, out.ints([2])], [part]);
  return part;
}

function node(out: OnnxWriter, op: string, inputs: string[], hint: string, attrs = {}): string {
  const y = out.fresh(hint);
  out.node(op, inputs, [y], attrs);
  return y;
}

const lastTwoSwapped = { perm: { ints: [0, 1, 3, 2] } };

const ChunkedAttentionOp: OpDef<ChunkAttrs> = {
  name: 'ChunkedAttention',
  infer(inputs, { chunks }) {
    const { b, h, nq, dv } = checkQkv(inputs);
    checkChunks(chunks, nq);
    return [{ dtype: inputs[0].dtype, shape: [b, h, nq, dv] }];
  },
  emit(n, out) {
    const [q, k, v] = n.inputs.map(out.name);
    const { chunks } = n.attrs;
    const kt = node(out, 'Transpose', [k], 'kt', lastTwoSwapped);
    const parts: string[] = [];
    for (const range of chunkBounds(out, n.inputs[0].shape[2], chunks)) {
      const start = after(out, range.start, parts.slice(-1));
      const scores = node(out, 'MatMul', [rowsOf(out, q, { ...range, start }, chunks), kt], 'scores');
      const probs = node(out, 'Softmax', [scores], 'probs', { axis: { int: -1 } });
      parts.push(chunks === 1 ? probs : node(out, 'MatMul', [probs, v], 'attended'));
    }
    const result = out.name(n.outputs[0]);
    if (chunks === 1) out.node('MatMul', [parts[0], v], [result]);
    else out.node('Concat', parts, [result], { axis: { int: 2 } });
  },
  vjp(n, [gOut], wanted) {
    if (!gOut) return [undefined, undefined, undefined];
    const [q, k, v] = n.inputs;
    return chunkedAttentionGrad([q, k, v], n.outputs[0], gOut, n.attrs.chunks, wanted);
  },
};

interface GradAttrs extends ChunkAttrs {
  /** which of dQ, dK, dV to compute */
  wanted: boolean[];
}

/**
 * (q, k, v, o, dO) → (dQ, dK, dV). Per chunk of query rows: P = softmax(Qc·Kᵀ),
 * dS = P ⊙ (dOc·Vᵀ − D) with D = rowsum(dOc ⊙ Oc), dQc = dS·K; dK and dV accumulate
 * dSᵀ·Qc and Pᵀ·dOc over the chunks.
 */
const ChunkedAttentionGradOp: OpDef<GradAttrs> = {
  name: 'ChunkedAttentionGrad',
  nondiff: [0, 1, 2, 3, 4],
  infer(inputs, { chunks }) {
    const [q, k, v, o, g] = inputs;
    const { nq } = checkQkv([q, k, v]);
    checkChunks(chunks, nq);
    for (const t of [o, g]) {
      if (t.shape.length !== 4 || t.dtype !== q.dtype)
        throw new RuleError('o and dO must be like the result');
    }
    return [q, k, v].map((t) => ({ dtype: t.dtype, shape: t.shape }));
  },
  emit(n: Node<GradAttrs>, out) {
    const [q, k, v, o, gOut] = n.inputs.map(out.name);
    const { chunks, wanted } = n.attrs;
    const [wantQ, wantK, wantV] = wanted;
    const kt = node(out, 'Transpose', [k], 'kt', lastTwoSwapped);
    // [V | −1]ᵀ: with [dO | D] on the left the product is dO·Vᵀ − D·1ᵀ, sparing an N×N broadcast.
    const vShape = node(out, 'Shape', [v], 'v_shape', { end: { int: 3 } });
    const columnShape = node(out, 'Concat', [vShape, out.ints([1])], 'column_shape', { axis: { int: 0 } });
    const minusOnes = node(out, 'Expand', [out.scalar(-1, n.inputs[2].dtype), columnShape], 'minus_ones');
    const vAugT = node(
      out,
      'Transpose',
      [node(out, 'Concat', [v, minusOnes], 'v_aug', { axis: { int: -1 } })],
      'v_aug_t',
      lastTwoSwapped,
    );
    const dqParts: string[] = [];
    let dk: string | undefined;
    let dv: string | undefined;
    const accumulate = (acc: string | undefined, term: string) =>
      acc === undefined ? term : node(out, 'Add', [acc, term], 'grad_sum');
    for (const bounds of chunkBounds(out, n.inputs[0].shape[2], chunks)) {
      const previous = [dqParts.at(-1), dk, dv].filter((t): t is string => t !== undefined);
      const range = { ...bounds, start: after(out, bounds.start, previous) };
      const qc = rowsOf(out, q, range, chunks);
      const gc = rowsOf(out, gOut, range, chunks);
      const scores = node(out, 'MatMul', [qc, kt], 'scores');
      const probs = node(out, 'Softmax', [scores], 'probs', { axis: { int: -1 } });
      if (wantV) {
        const pt = node(out, 'Transpose', [probs], 'probs_t', lastTwoSwapped);
        dv = accumulate(dv, node(out, 'MatMul', [pt, gc], 'dv_part'));
      }
      if (!wantQ && !wantK) continue;
      const oc = rowsOf(out, o, range, chunks);
      const rowSum = node(out, 'ReduceSum', [node(out, 'Mul', [gc, oc], 'g_o'), out.ints([-1])], 'row_sum', {
        keepdims: { int: 1 },
      });
      const gAug = node(out, 'Concat', [gc, rowSum], 'g_aug', { axis: { int: -1 } });
      const centred = node(out, 'MatMul', [gAug, vAugT], 'centred');
      const dScores = node(out, 'Mul', [probs, centred], 'd_scores');
      if (wantQ) dqParts.push(node(out, 'MatMul', [dScores, k], 'dq_part'));
      if (wantK) {
        const dst = node(out, 'Transpose', [dScores], 'd_scores_t', lastTwoSwapped);
        dk = accumulate(dk, node(out, 'MatMul', [dst, qc], 'dk_part'));
      }
    }
    const publish = (parts: string[] | string | undefined, index: number) => {
      if (parts === undefined) return;
      const name = out.name(n.outputs[index]);
      if (typeof parts === 'string') out.node('Identity', [parts], [name]);
      else if (parts.length === 1) out.node('Identity', parts, [name]);
      else out.node('Concat', parts, [name], { axis: { int: 2 } });
    };
    if (wantQ) publish(dqParts, 0);
    publish(dk, 1);
    publish(dv, 2);
  },
};

/**
 * dQ, dK, dV of softmax(q·kᵀ)·v = o for [B, heads, N, d] inputs given dO, recomputing the
 * probabilities chunk by chunk; undefined where not wanted. Other kernels with the same
 * result (a fused forward) take their VJP from here.
 */
export function chunkedAttentionGrad(
  qkv: readonly [Tensor, Tensor, Tensor],
  o: Tensor,
  gOut: Tensor,
  chunks: number,
  wanted: readonly boolean[],
): (Tensor | undefined)[] {
  const grads = apply(ChunkedAttentionGradOp, [...qkv, o, gOut], { chunks, wanted: [...wanted] });
  return grads.map((g, i) => (wanted[i] ? g : undefined));
}

/**
 * softmax(q·kᵀ)·v for [B, heads, N, d] inputs (q already scaled), over `chunks` chunks of
 * query rows. Only the result leaves the op: use `attention` where the probabilities are read.
 */
export function chunkedAttention(q: Tensor, k: Tensor, v: Tensor, chunks: number): Tensor {
  return apply1(ChunkedAttentionOp, [q, k, v], { chunks });
}

/**
 * The number of query chunks that keeps one chunk's scores and probabilities for one sample
 * within `bytesPerSample`: a power of two (sizes halve and double), at most `queries`.
 */
export function queryChunksFor(opts: {
  queries: number;
  keys: number;
  heads: number;
  bytesPerElement: number;
  bytesPerSample: number;
}): number {
  const { queries, keys, heads, bytesPerElement, bytesPerSample } = opts;
  // scores and probabilities of a chunk are alive together
  const whole = 2 * heads * queries * keys * bytesPerElement;
  let chunks = 1;
  while (whole / chunks > bytesPerSample && chunks * 2 <= queries) chunks *= 2;
  return chunks;
}
