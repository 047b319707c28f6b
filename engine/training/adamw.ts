// AdamW (Loshchilov & Hutter, "Decoupled Weight Decay Regularization", 2019) over named
// float32 arrays, with global gradient-norm clipping. The moments live beside the
// parameters so a run can stop and resume bit for bit.

import type { TensorStore } from './tensor-store.ts';

export interface AdamWSettings {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** rescale the whole gradient when its L2 norm exceeds this (Infinity: never) */
  clipNorm: number;
}

export const ADAMW_DEFAULTS: AdamWSettings = {
  beta1: 0.9,
  beta2: 0.999,
  eps: 1e-8,
  weightDecay: 0.01,
  clipNorm: 1,
};

/** Parameters that weight decay leaves alone, as PyTorch recipes do: biases and norm scales. */
export function decays(name: string, shape: readonly number[]): boolean {
  return shape.length > 1 && !name.endsWith('.bias');
}

export class AdamW {
  /** optimiser steps taken so far */
  steps = 0;

  constructor(
    /** the parameters being trained, updated in place */
    readonly params: TensorStore,
    /** first and second moments, one tensor each per parameter (`m.<name>`, `v.<name>`) */
    readonly moments: TensorStore,
    readonly settings: AdamWSettings = ADAMW_DEFAULTS,
  ) {
    for (const name of params.names()) {
      const shape = params.shape(name);
      const n = params.float32(name).length;
      for (const k of ['m', 'v'])
        if (!moments.has(`${k}.${name}`)) moments.set(`${k}.${name}`, shape, new Float32Array(n));
    }
  }

  /** One update from gradients by parameter name; returns the gradient norm before clipping. */
  update(grads: ReadonlyMap<string, Float32Array>, learningRate: number): number {
    const { beta1, beta2, eps, weightDecay, clipNorm } = this.settings;
    let squares = 0;
    for (const g of grads.values()) for (let i = 0; i < g.length; i++) squares += g[i] * g[i];
    const norm = Math.sqrt(squares);
    if (!Number.isFinite(norm)) throw new RangeError(`AdamW: the gradient is not finite (norm ${norm})`);
    const scale = norm > clipNorm ? clipNorm / norm : 1;
    this.steps++;
    const c1 = 1 - beta1 ** this.steps;
    const c2 = 1 - beta2 ** this.steps;
    for (const [name, g] of grads) {
      const p = this.params.float32(name);
      const m = this.moments.float32(`m.${name}`);
      const v = this.moments.float32(`v.${name}`);
      const decay = decays(name, this.params.shape(name)) ? 1 - learningRate * weightDecay : 1;
      for (let i = 0; i < p.length; i++) {
        const gi = g[i] * scale;
        m[i] = beta1 * m[i] + (1 - beta1) * gi;
        v[i] = beta2 * v[i] + (1 - beta2) * gi * gi;
        p[i] = p[i] * decay - (learningRate * (m[i] / c1)) / (Math.sqrt(v[i] / c2) + eps);
      }
    }
    return norm;
  }
}
