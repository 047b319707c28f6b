// How the networks compute attention: one switch between the memory-efficient kernel
// (query chunks, probabilities recomputed in the VJP), onnxruntime's fused kernel
// (com.microsoft MultiHeadAttention forward, the chunked backward) and the materialised one
// (every probability kept, as a naive implementation does), so benchmarks compare them in
// one run. Layers whose probabilities are read (CLoRA's maps) always materialise them: those
// are cross-attention layers with 77 keys, a small matrix.

import { type Dim, evalDim } from '../graph/dim.ts';
import { bytesPerElement } from '../graph/dtype.ts';
import type { Tensor } from '../graph/index.ts';
import * as G from '../graph/index.ts';

export type AttentionKernel = 'chunked' | 'fused' | 'materialised';

export const ATTENTION_KERNELS: readonly AttentionKernel[] = ['chunked', 'fused', 'materialised'];

export interface AttentionSettings {
  kernel: AttentionKernel;
  /** memory one query chunk's scores and probabilities may take, per sample */
  chunkBytesPerSample: number;
  /**
   * Values of the graph's spatial symbols (`H`, `W`, `h`, `w`) at which chunk counts are chosen:
   * the model's native latent size. Smaller inputs run in fewer chunks within the same budget,
   * larger ones in proportionally larger chunks.
   */
  reference: ReadonlyMap<string, number>;
}

/** 64 MiB per sample: at SD 1.5's 64×64 latent a self-attention layer (8 heads) splits into 16 chunks. */
export const DEFAULT_CHUNK_BYTES_PER_SAMPLE = 64 * 2 ** 20;

export function attentionSettings(
  latent: { height: number; width: number },
  o: { kernel?: AttentionKernel; chunkBytesPerSample?: number } = {},
): AttentionSettings {
  const { height, width } = latent;
  return {
    kernel: o.kernel ?? 'chunked',
    chunkBytesPerSample: o.chunkBytesPerSample ?? DEFAULT_CHUNK_BYTES_PER_SAMPLE,
    reference: new Map([
      ['H', height],
      ['W', width],
      ['h', height],
      ['w', width],
    ]),
  };
}

export interface Attended {
  /** [B, Nq, C] */
  out: Tensor;
  /** head-averaged probabilities [B, Nq, Nk], when asked for */
  probs?: Tensor;
}

/**
 * Multi-head attention on projected q [B, Nq, C], k/v [B, Nk, C] with the settings' kernel;
 * `probs` asks for the head-averaged probabilities (and so for the materialised kernel).
 */
export function attend(
  settings: AttentionSettings | undefined,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  heads: number,
  opts: { probs?: boolean } = {},
): Attended {
  if (opts.probs || !settings || settings.kernel === 'materialised') {
    const { out, probs } = G.multiHeadAttention(q, k, v, heads);
    return { out, probs: opts.probs ? G.reduceMean(probs, 1) : undefined };
  }
  const chunking = G.queryChunkingFor({
    queries: atReference(q.shape[1], settings),
    keys: atReference(k.shape[1], settings),
    heads,
    bytesPerElement: bytesPerElement(q.dtype),
    bytesPerSample: settings.chunkBytesPerSample,
  });
  if (settings.kernel === 'fused') return { out: G.fusedMultiHeadAttention(q, k, v, heads, chunking) };
  return { out: G.chunkedMultiHeadAttention(q, k, v, heads, chunking) };
}

function atReference(d: Dim, settings: AttentionSettings): number {
  const value = evalDim(d, settings.reference);
  if (value === undefined) {
    throw new G.GraphError(
      `attention: cannot size query chunks for ${G.dimStr(d)} tokens; its symbols have no reference size`,
    );
  }
  return Math.max(1, Math.round(value));
}
