// Memory-efficient attention: softmax(Q·Kᵀ)·V computed over chunks of query rows, so no
// more than one chunk's scores and probabilities exist at a time (onnxruntime frees a
// value after its last reader). Its VJP is a second op of the same shape that recomputes
// each chunk's probabilities from Q and K instead of keeping them (FlashAttention's
// backward), with D = rowsum(dO ⊙ O) standing in for rowsum(dP ⊙ P).
//
// A chunk holds whole rows (every key), so recomputing its probabilities is one fused
// Softmax over the recomputed scores — as cheap as exp(S − L) from a saved log-sum-exp,
// and without the broadcast along the last axis that onnxruntime's CPU kernels do slowly.
// The chunk count is a static maximum; the rows a chunk holds are chosen at run time from
// the query and key counts: as many as the scores budget allows (fewer, larger chunks at
// smaller sizes; the trailing chunks are then empty, zero-row slices onnxruntime passes
// through), and at least N / chunks (larger chunks past the size the count was chosen at).
// Each chunk starts only after the previous one has produced everything it will produce:
// a zero derived from those outputs' shapes joins the next chunk's start row, so whatever
// order onnxruntime picks, one chunk's intermediates are freed before the next allocates.

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

export interface ChunkAttrs {
  /** the most query chunks; 1 computes the whole attention at once */
  chunks: number;
  /**
   * the most scores (query rows × keys) one chunk may hold per head; undefined: none, so
   * every chunk holds N / chunks rows
   */
  chunkScores?: number;
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

function checkChunks({ chunks, chunkScores }: ChunkAttrs, nq: Dim): void {
  if (!Number.isInteger(chunks) || chunks < 1)
    throw new RuleError(`chunks must be a whole number ≥ 1, got ${chunks}`);
  if (isStatic(nq) && chunks > Math.max(nq, 1)) {
    throw new RuleError(`${chunks} chunks are more than the ${nq} query rows`);
  }
  if (chunkScores !== undefined && !(Number.isInteger(chunkScores) && chunkScores >= 1))
    throw new RuleError(`chunkScores must be a whole number ≥ 1, got ${chunkScores}`);
}

/** Rows [start, end) of one chunk, and whether it may hold none at run time. */
type Range = { start: string; end: string; mayBeEmpty?: boolean };

/**
 * Row ranges [start, end) of the chunks along the query axis, as int64 tensor names: chunk i
 * spans min(i·R, N) … min((i+1)·R, N) with R = max(⌈N / chunks⌉, ⌊chunkScores / keys⌋), from
 * N and the key count at run time where they are symbolic. Statically empty chunks are left
 * out; one range covering every row means no chunking.
 */
function chunkRanges(out: OnnxWriter, rows: Dim, keys: Dim, { chunks, chunkScores }: ChunkAttrs): Range[] {
  if (chunks === 1) return [{ start: out.ints([0]), end: out.shape([rows]) }];
  if (isStatic(rows) && (isStatic(keys) || chunkScores === undefined)) {
    const perChunk = Math.max(
      Math.ceil(rows / chunks),
      chunkScores === undefined ? 0 : Math.floor(chunkScores / Math.max(keys as number, 1)),
    );
    const bounds = [0];
    while (bounds.at(-1)! < rows) bounds.push(Math.min(bounds.at(-1)! + perChunk, rows));
    if (bounds.length <= 2) return [{ start: out.ints([0]), end: out.ints([rows]) }];
    return bounds.slice(1).map((end, i) => ({ start: out.ints([bounds[i]]), end: out.ints([end]) }));
  }
  const n = out.shape([rows]);
  const atLeast = node(
    out,
    'Div',
    [node(out, 'Add', [n, out.ints([chunks - 1])], 'rows'), out.ints([chunks])],
    'rows',
  );
  let perChunk = atLeast;
  if (chunkScores !== undefined) {
    const byBudget = isStatic(keys)
      ? out.ints([Math.floor(chunkScores / Math.max(keys, 1))])
      : node(
          out,
          'Div',
          [out.ints([chunkScores]), node(out, 'Max', [out.shape([keys]), out.ints([1])], 'keys')],
          'rows',
        );
    perChunk = node(out, 'Max', [atLeast, byBudget], 'chunk_rows');
  }
  const bound = (i: number): string => {
    if (i === 0) return out.ints([0]);
    if (i === chunks) return n;
    return node(out, 'Min', [node(out, 'Mul', [perChunk, out.ints([i])], 'chunk_bound'), n], 'chunk_bound');
  };
  const bounds = Array.from({ length: chunks + 1 }, (_, i) => bound(i));
  return Array.from({ length: chunks }, (_, i) => ({
    start: bounds[i],
    end: bounds[i + 1],
    // chunk 0 holds at least one row of any input with rows
    mayBeEmpty: i > 0,
  }));
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
function rowsOf(out: OnnxWriter, x: string, range: Range, chunked: boolean): string {
  if (!chunked) return x;
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
  infer(inputs, attrs) {
    const { b, h, nq, dv } = checkQkv(inputs);
    checkChunks(attrs, nq);
    return [{ dtype: inputs[0].dtype, shape: [b, h, nq, dv] }];
  },
  emit(n, out) {
    const [q, k, v] = n.inputs.map(out.name);
    const kt = node(out, 'Transpose', [k], 'kt', lastTwoSwapped);
    const ranges = chunkRanges(out, n.inputs[0].shape[2], n.inputs[1].shape[2], n.attrs);
    const chunked = ranges.length > 1;
    const parts: string[] = [];
    for (const range of ranges) {
      const start = after(out, range.start, parts.slice(-1));
      const scores = node(out, 'MatMul', [rowsOf(out, q, { ...range, start }, chunked), kt], 'scores');
      const probs = node(out, 'Softmax', [scores], 'probs', { axis: { int: -1 } });
      parts.push(chunked ? node(out, 'MatMul', [probs, v], 'attended') : probs);
    }
    const result = out.name(n.outputs[0]);
    if (chunked) out.node('Concat', parts, [result], { axis: { int: 2 } });
    else out.node('MatMul', [parts[0], v], [result]);
  },
  vjp(n, [gOut], wanted) {
    if (!gOut) return [undefined, undefined, undefined];
    const [q, k, v] = n.inputs;
    const { chunks, chunkScores } = n.attrs;
    return chunkedAttentionGrad([q, k, v], n.outputs[0], gOut, { chunks, chunkScores }, wanted);
  },
};

interface GradAttrs extends ChunkAttrs {
  /** which of dQ, dK, dV to compute */
  wanted: boolean[];
}

/**
 * (q, k, v, o, dO) → (dQ, dK, dV). With D = rowsum(dO ⊙ O), per chunk of query rows:
 * P = softmax(Qc·Kᵀ), dS = P ⊙ (dOc·Vᵀ − Dc), dQc = dS·K; dK and dV accumulate dSᵀ·Qc and
 * Pᵀ·dOc over the chunks.
 */
const ChunkedAttentionGradOp: OpDef<GradAttrs> = {
  name: 'ChunkedAttentionGrad',
  nondiff: [0, 1, 2, 3, 4],
  infer(inputs, attrs) {
    const [q, k, v, o, g] = inputs;
    const { nq } = checkQkv([q, k, v]);
    checkChunks(attrs, nq);
    for (const t of [o, g]) {
      if (t.shape.length !== 4 || t.dtype !== q.dtype)
        throw new RuleError('o and dO must be like the result');
    }
    return [q, k, v].map((t) => ({ dtype: t.dtype, shape: t.shape }));
  },
  emit(n: Node<GradAttrs>, out) {
    const [q, k, v, o, gOut] = n.inputs.map(out.name);
    const [wantQ, wantK, wantV] = n.attrs.wanted;
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
    // [dO | D] for every row at once: D is N numbers, and a chunk slices its rows
    const rowSum =
      wantQ || wantK
        ? node(out, 'ReduceSum', [node(out, 'Mul', [gOut, o], 'g_o'), out.ints([-1])], 'row_sum', {
            keepdims: { int: 1 },
          })
        : undefined;
    const gAug = rowSum && node(out, 'Concat', [gOut, rowSum], 'g_aug', { axis: { int: -1 } });
    const dqParts: string[] = [];
    let dk: string | undefined;
    let dv: string | undefined;
    const accumulate = (acc: string | undefined, term: string) =>
      acc === undefined ? term : node(out, 'Add', [acc, term], 'grad_sum');
    const ranges = chunkRanges(out, n.inputs[0].shape[2], n.inputs[1].shape[2], n.attrs);
    const chunked = ranges.length > 1;
    // An empty chunk's dK and dV terms are products over 0 rows: onnxruntime's FusedMatMul
    // (a Transpose fused into MatMul) leaves them unwritten rather than zero, so drop them.
    const zero = out.scalar(0, n.inputs[0].dtype);
    const term = (range: Range, t: string) => {
      if (!range.mayBeEmpty) return t;
      const empty = node(out, 'Equal', [range.start, range.end], 'empty_chunk');
      return node(out, 'Where', [empty, zero, t], 'grad_term');
    };
    for (const bounds of ranges) {
      const previous = [dqParts.at(-1), dk, dv].filter((t): t is string => t !== undefined);
      const range = { ...bounds, start: after(out, bounds.start, previous) };
      const qc = rowsOf(out, q, range, chunked);
      const scores = node(out, 'MatMul', [qc, kt], 'scores');
      const probs = node(out, 'Softmax', [scores], 'probs', { axis: { int: -1 } });
      if (wantV) {
        const pt = node(out, 'Transpose', [probs], 'probs_t', lastTwoSwapped);
        const gc = rowsOf(out, gOut, range, chunked);
        dv = accumulate(dv, term(bounds, node(out, 'MatMul', [pt, gc], 'dv_part')));
      }
      if (!wantQ && !wantK) continue;
      const centred = node(out, 'MatMul', [rowsOf(out, gAug!, range, chunked), vAugT], 'centred');
      const dScores = node(out, 'Mul', [probs, centred], 'd_scores');
      if (wantQ) dqParts.push(node(out, 'MatMul', [dScores, k], 'dq_part'));
      if (wantK) {
        const dst = node(out, 'Transpose', [dScores], 'd_scores_t', lastTwoSwapped);
        dk = accumulate(dk, term(bounds, node(out, 'MatMul', [dst, qc], 'dk_part')));
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
  chunking: ChunkAttrs,
  wanted: readonly boolean[],
): (Tensor | undefined)[] {
  const grads = apply(ChunkedAttentionGradOp, [...qkv, o, gOut], { ...chunking, wanted: [...wanted] });
  return grads.map((g, i) => (wanted[i] ? g : undefined));
}

/**
 * softmax(q·kᵀ)·v for [B, heads, N, d] inputs (q already scaled), over `chunks` chunks of
 * query rows. Only the result leaves the op: use `attention` where the probabilities are read.
 */
export function chunkedAttention(q: Tensor, k: Tensor, v: Tensor, chunking: number | ChunkAttrs): Tensor {
  return apply1(ChunkedAttentionOp, [q, k, v], chunkAttrs(chunking));
}

/** A bare count as chunk attributes: that many chunks of N / chunks rows. */
export function chunkAttrs(chunking: number | ChunkAttrs): ChunkAttrs {
  return typeof chunking === 'number' ? { chunks: chunking } : { ...chunking };
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

/**
 * Query chunking within `bytesPerSample` for every size: at most `queryChunksFor` chunks (at
 * the reference size), each holding as many rows as the budget allows at the run-time key
 * count, so smaller inputs run in fewer chunks and larger ones in larger chunks.
 */
export function queryChunkingFor(opts: Parameters<typeof queryChunksFor>[0]): ChunkAttrs {
  const { heads, bytesPerElement, bytesPerSample } = opts;
  const chunks = queryChunksFor(opts);
  if (chunks === 1) return { chunks };
  // scores and probabilities of a chunk are alive together
  return { chunks, chunkScores: Math.max(1, Math.floor(bytesPerSample / (2 * heads * bytesPerElement))) };
}
