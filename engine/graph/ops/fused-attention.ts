// Multi-head attention as onnxruntime's fused kernel (com.microsoft MultiHeadAttention:
// FlashAttention on the CPU, flash or memory-efficient kernels on CUDA), for graphs that
// only run forward. Its VJP is the chunked kernel's backward, so a graph that is
// differentiated through it still never holds all probabilities.

import { dimDiv, dimEq, dimStr, isStatic } from '../dim.ts';
import { apply1, GraphError, type OpDef, RuleError, type Tensor } from '../graph.ts';
import { requireFloat } from '../rules.ts';
import { mergeHeads, splitHeads } from './attention.ts';
import { type ChunkAttrs, chunkAttrs, chunkedAttentionGrad } from './chunked-attention.ts';
import { mul } from './elementwise.ts';

interface FusedAttrs {
  heads: number;
  /** query chunks of the VJP's recomputation */
  chunking: ChunkAttrs;
}

const scaleOf = (q: { shape: readonly unknown[] }, heads: number) =>
  1 / Math.sqrt((q.shape[2] as number) / heads);

const FusedAttentionOp: OpDef<FusedAttrs> = {
  name: 'FusedAttention',
  infer([q, k, v], { heads }) {
    requireFloat(q);
    for (const t of [q, k, v]) if (t.shape.length !== 3) throw new RuleError('q, k and v must be [B, N, C]');
    if (q.dtype !== k.dtype || q.dtype !== v.dtype) throw new RuleError('q, k and v must share a dtype');
    const [b, , c] = q.shape;
    const [kb, nk, kc] = k.shape;
    const [vb, vn, vc] = v.shape;
    if (!dimEq(b, kb) || !dimEq(b, vb)) throw new RuleError('q, k and v must have the same batch');
    if (!dimEq(c, kc)) throw new RuleError(`q and k widths differ (${dimStr(c)} vs ${dimStr(kc)})`);
    if (!dimEq(nk, vn)) throw new RuleError(`k and v lengths differ (${dimStr(nk)} vs ${dimStr(vn)})`);
    if (!isStatic(c) || c % heads !== 0 || !isStatic(vc) || vc % heads !== 0)
      throw new RuleError(`the widths must split into ${heads} heads`);
    return [{ dtype: q.dtype, shape: [b, q.shape[1], vc] }];
  },
  emit(n, out) {
    const { heads } = n.attrs;
    out.node(
      'MultiHeadAttention',
      n.inputs.map(out.name),
      [out.name(n.outputs[0])],
      { num_heads: { int: heads }, scale: { float: scaleOf(n.inputs[0], heads) } },
      'com.microsoft',
    );
  },
  vjp(n, [g], wanted) {
    if (!g) return [undefined, undefined, undefined];
    const [q, k, v] = n.inputs;
    const { heads, chunking } = n.attrs;
    const scale = scaleOf(q, heads);
    const qkv = [splitHeads(mul(q, scale), heads), splitHeads(k, heads), splitHeads(v, heads)] as const;
    const [dq, dk, dv] = chunkedAttentionGrad(
      qkv,
      splitHeads(n.outputs[0], heads),
      splitHeads(g, heads),
      chunking,
      wanted,
    );
    return [dq && mul(mergeHeads(dq), scale), dk && mergeHeads(dk), dv && mergeHeads(dv)];
  },
};

/** Multi-head attention on projected q [B, Nq, C], k/v [B, Nk, C] with onnxruntime's fused kernel. */
export function fusedMultiHeadAttention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  heads: number,
  chunking: number | ChunkAttrs = 1,
): Tensor {
  const headDim = dimDiv(q.shape[2], heads);
  if (!isStatic(headDim)) throw new GraphError(`attention: head size ${dimStr(headDim)} must be static`);
  return apply1(FusedAttentionOp, [q, k, v], { heads, chunking: chunkAttrs(chunking) });
}
