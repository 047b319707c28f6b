// How branches become rows of one batched call: their prompts' embeddings as the UNet's
// context, and their LoRAs as per-row gates (DESIGN decision 2).

import type { HostTensor } from '../graph/index.ts';
import * as G from '../graph/index.ts';
import { type GatedLora, type LoraFactors, loraFeeds } from '../lora/gated.ts';
import type { CompiledNetwork } from '../models/compiled.ts';
import { CLIP_CONTEXT_LENGTH } from '../tokenizer/index.ts';
import type { BranchLora } from './plan.ts';
import type { LoraRef } from './spec.ts';

export type LoadLora = (ref: LoraRef) => Promise<{ modules: readonly LoraFactors[] }>;

/** Each branch's text embedding and the negative prompt's, [77, contextDim] a row. */
export class PromptEmbeddings {
  readonly rowSize: number;

  constructor(
    /** the branches' rows, in branch order */
    readonly cond: Float32Array,
    /** the negative prompt's row */
    readonly uncond: Float32Array,
    readonly contextDim: number,
  ) {
    this.rowSize = CLIP_CONTEXT_LENGTH * contextDim;
  }

  /** Context of branches [from, to): their conditional rows. */
  branches(from: number, to: number): HostTensor {
    return G.hostTensor('float32', this.cond.slice(from * this.rowSize, to * this.rowSize), [
      to - from,
      CLIP_CONTEXT_LENGTH,
      this.contextDim,
    ]);
  }

  /** Context of branches [from, to) under CFG: an unconditional row each, then their conditional rows. */
  pairs(from: number, to: number): HostTensor {
    const k = to - from;
    const ctx = new Float32Array(2 * k * this.rowSize);
    for (let i = 0; i < k; i++) ctx.set(this.uncond, i * this.rowSize);
    ctx.set(this.cond.subarray(from * this.rowSize, to * this.rowSize), k * this.rowSize);
    return G.hostTensor('float32', ctx, [2 * k, CLIP_CONTEXT_LENGTH, this.contextDim]);
  }
}

/** Which LoRAs the branches use, as gates for a batch laid out by `rows` (a branch per row, or none). */
export async function branchGates(
  loadLora: LoadLora,
  branchLoras: readonly BranchLora[][],
  rows: readonly (number | null)[],
): Promise<GatedLora[]> {
  const byPath = new Map<string, { ref: LoraRef; weights: number[] }>();
  rows.forEach((branch, row) => {
    if (branch === null) return;
    for (const { lora, weight } of branchLoras[branch]) {
      let entry = byPath.get(lora.path);
      if (!entry) {
        entry = { ref: lora, weights: new Array(rows.length).fill(0) };
        byPath.set(lora.path, entry);
      }
      entry.weights[row] += weight;
    }
  });
  const out: GatedLora[] = [];
  for (const { ref, weights } of byPath.values())
    out.push({ modules: (await loadLora(ref)).modules, weights });
  return out;
}

/** The LoRA factor and gate feeds of `net` for a batch laid out by `rows`; none when it has no slots. */
export async function gateFeeds(
  net: CompiledNetwork,
  loadLora: LoadLora,
  branchLoras: readonly BranchLora[][],
  rows: readonly (number | null)[],
): Promise<Record<string, HostTensor>> {
  if (!net.slots) return {};
  return loraFeeds(net.slots, await branchGates(loadLora, branchLoras, rows), rows.length);
}

/** `x` laid end to end `times` times: one latent as the sample of every row. */
export function repeat(x: Float32Array, times: number): Float32Array {
  const out = new Float32Array(x.length * times);
  for (let i = 0; i < times; i++) out.set(x, i * x.length);
  return out;
}

/** The parts end to end, as float32. */
export function concatRows(parts: readonly ArrayLike<number>[]): Float32Array {
  const out = new Float32Array(parts.reduce((total, p) => total + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export function range(from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, i) => from + i);
}

/** [from, to) spans of `size` items or fewer covering 0 … total − 1 in order. */
export function spans(total: number, size: number): [number, number][] {
  const out: [number, number][] = [];
  for (let from = 0; from < total; from += size) out.push([from, Math.min(total, from + size)]);
  return out;
}

/** A timestep input: `t` for each of `batch` rows. */
export function timestepFeed(t: number, batch: number): HostTensor {
  return G.hostTensor('float32', new Float32Array(batch).fill(t), [batch]);
}
