// LoRAs as gated branches (DESIGN decision 2). An adaptable layer computes
//   y = W·x + ((x·Aᵀ) ⊙ g)·Bᵀ
// where A and B concatenate the low-rank factors of every LoRA in a job along the rank
// axis and g [batch, R] holds each sample's scale for each rank column (0 where the
// sample does not use that LoRA). The factors and gates are session inputs, so one
// compiled model serves any mix of LoRAs, per sample, in one batched call.

import type { Dim, DType, HostTensor, Tensor } from '../graph/index.ts';
import * as G from '../graph/index.ts';

export type LoraTarget = 'unet' | 'text_encoder';

/** How an adaptable layer maps its input (recorded while the model graph is built). */
export interface LoraSlot {
  module: string;
  kind: 'linear' | 'conv';
  inFeatures: number;
  outFeatures: number;
  /** conv only */
  kernel: [number, number];
  stride: number;
  padding: number;
  /** input names of this slot's factors and gate */
  inputs: { down: string; up: string; gate: string };
}

/** One LoRA module's factors (a subset of engine/lora/file.ts's LoraModule). */
export interface LoraFactors {
  target: LoraTarget;
  module: string;
  rank: number;
  /** alpha / rank */
  scale: number;
  down: Float32Array;
  /** [r,in] or [r,in,kh,kw] */
  downShape: number[];
  up: Float32Array;
  /** [out,r] */
  upShape: number[];
}

/** A LoRA as the gate builder sees it: its modules and a per-sample weight. */
export interface GatedLora {
  modules: readonly LoraFactors[];
  /** weight of this LoRA for each sample of the batch (0 = off) */
  weights: readonly number[];
}

export class LoraSlots {
  readonly slots = new Map<string, LoraSlot>();

  /**
   * @param spatialConvs also give k×k convolutions a branch (LoCon files need it; their
   *   down convolution costs about as much input traffic as the layer itself, so it is opt-in)
   */
  constructor(
    readonly target: LoraTarget,
    readonly spatialConvs = false,
  ) {}

  /**
   * Whether these factors need k×k convolution branches (LoCon's), which slots give only when
   * built with `spatialConvs`.
   */
  static needSpatialConvs(target: LoraTarget, modules: readonly LoraFactors[]): boolean {
    return modules.some(
      (m) => m.target === target && m.downShape.length === 4 && m.downShape[2] * m.downShape[3] > 1,
    );
  }

  /** Whether the layer at `module` (with this kernel size; 1 for Linear) gets a branch. */
  has(_module: string, kernel = 1): boolean {
    return kernel === 1 || this.spatialConvs;
  }

  /** Adds the low-rank term for a Linear layer to `y` (rows = x as [-1, in], batch = samples). */
  linearBranch(rows: Tensor, batch: Dim, module: string, inFeatures: number, outFeatures: number): Tensor {
    const slot = this.slot(rows.graph, {
      module,
      kind: 'linear',
      inFeatures,
      outFeatures,
      kernel: [1, 1],
      stride: 1,
      padding: 0,
    });
    const [down, up, gate] = this.inputs(rows.graph, slot, rows.dtype, batch);
    const r = down.shape[0];
    const projected = G.gemm(rows, down, { transB: true }); // [rows, R]
    const gated = G.mul(G.reshape(projected, [batch, -1, r]), G.unsqueeze(gate, 1));
    return G.gemm(G.reshape(gated, [-1, r]), up, { transB: true }); // [rows, out]
  }

  /** The low-rank term for a Conv2d layer: a k×k down conv, the gate, a 1×1 up conv. */
  convBranch(
    x: Tensor,
    module: string,
    conv: {
      inFeatures: number;
      outFeatures: number;
      kernel: [number, number];
      stride: number;
      padding: number;
    },
  ): Tensor {
    const slot = this.slot(x.graph, { module, kind: 'conv', ...conv });
    const [down, up, gate] = this.inputs(x.graph, slot, x.dtype, x.shape[0]);
    const h = G.conv2d(x, down, undefined, { stride: conv.stride, padding: conv.padding });
    const gated = G.mul(h, G.unsqueeze(gate, [2, 3]));
    return G.conv2d(gated, up);
  }

  private slot(_g: G.Graph, spec: Omit<LoraSlot, 'inputs'>): LoraSlot {
    const existing = this.slots.get(spec.module);
    if (existing) return existing;
    const base = `lora.${this.target}.${spec.module}`;
    const slot: LoraSlot = {
      ...spec,
      inputs: { down: `${base}.down`, up: `${base}.up`, gate: `${base}.gate` },
    };
    this.slots.set(spec.module, slot);
    return slot;
  }

  /** Factors and gate come in as float32 (like every graph input) and are cast to the compute dtype. */
  private inputs(g: G.Graph, slot: LoraSlot, dtype: DType, batch: Dim): [Tensor, Tensor, Tensor] {
    const rank = `R${this.slots.size}`;
    const [kh, kw] = slot.kernel;
    const shapes: (Dim | string)[][] =
      slot.kind === 'linear'
        ? [
            [rank, slot.inFeatures],
            [slot.outFeatures, rank],
          ]
        : [
            [rank, slot.inFeatures, kh, kw],
            [slot.outFeatures, rank, 1, 1],
          ];
    const down = g.input(slot.inputs.down, 'float32', shapes[0]);
    const up = g.input(slot.inputs.up, 'float32', shapes[1]);
    const gate = g.input(slot.inputs.gate, 'float32', [batch, rank]);
    return [G.cast(down, dtype), G.cast(up, dtype), G.cast(gate, dtype)];
  }
}

/**
 * Builds the factor and gate feeds of every slot for a batch: each slot concatenates the
 * factors of the LoRAs that adapt its module; a slot no LoRA touches gets a rank-1 zero
 * branch. Scale = weight × alpha/rank, per sample.
 */
export function loraFeeds(
  slots: LoraSlots,
  loras: readonly GatedLora[],
  batch: number,
  dtype: 'float32' = 'float32',
): Record<string, HostTensor> {
  const feeds: Record<string, HostTensor> = {};
  for (const slot of slots.slots.values()) {
    const parts: { m: LoraFactors; weights: readonly number[] }[] = [];
    for (const lora of loras) {
      if (lora.weights.length !== batch) {
        throw new Error(`a LoRA has ${lora.weights.length} per-sample weights for a batch of ${batch}`);
      }
      for (const m of lora.modules) {
        if (m.target === slots.target && m.module === slot.module) parts.push({ m, weights: lora.weights });
      }
    }
    const inCols = slot.inFeatures * slot.kernel[0] * slot.kernel[1];
    const rank = Math.max(
      1,
      parts.reduce((s, p) => s + p.m.rank, 0),
    );
    const down = new Float32Array(rank * inCols);
    const up = new Float32Array(slot.outFeatures * rank);
    const gate = new Float32Array(batch * rank);
    let r0 = 0;
    for (const { m, weights } of parts) {
      const expectDown = m.rank * inCols;
      if (m.down.length !== expectDown || m.up.length !== slot.outFeatures * m.rank) {
        throw new Error(
          `LoRA factors for ${slot.module} are [${m.downShape}] / [${m.upShape}], the layer needs [${m.rank},${inCols}] / [${slot.outFeatures},${m.rank}]`,
        );
      }
      down.set(m.down, r0 * inCols);
      for (let o = 0; o < slot.outFeatures; o++) {
        for (let k = 0; k < m.rank; k++) up[o * rank + r0 + k] = m.up[o * m.rank + k];
      }
      for (let b = 0; b < batch; b++) {
        const s = weights[b] * m.scale;
        for (let k = 0; k < m.rank; k++) gate[b * rank + r0 + k] = s;
      }
      r0 += m.rank;
    }
    const [kh, kw] = slot.kernel;
    feeds[slot.inputs.down] = G.hostTensor(
      dtype,
      down,
      slot.kind === 'linear' ? [rank, slot.inFeatures] : [rank, slot.inFeatures, kh, kw],
    );
    feeds[slot.inputs.up] = G.hostTensor(
      dtype,
      up,
      slot.kind === 'linear' ? [slot.outFeatures, rank] : [slot.outFeatures, rank, 1, 1],
    );
    feeds[slot.inputs.gate] = G.hostTensor(dtype, gate, [batch, rank]);
  }
  return feeds;
}
