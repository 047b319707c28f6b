// The merged form of LoRAs: W' = W + Σ weight·(alpha/rank)·up@down, as a WeightSet over the
// base one. The gated branches compute the same function per sample; tests compare the two.

import { createHash } from 'node:crypto';
import type { WeightData } from '../graph/index.ts';
import type { WeightSet } from '../weights/checkpoint.ts';
import { float16Bytes } from '../weights/safetensors.ts';
import { type LoraFile, mergedDelta } from './file.ts';
import type { LoraTarget } from './gated.ts';

export function mergedWeights(
  base: WeightSet,
  target: LoraTarget,
  loras: readonly { file: LoraFile; weight: number }[],
): WeightSet {
  const deltas = new Map<string, { delta: Float32Array; weight: number }[]>();
  for (const { file, weight } of loras) {
    for (const m of file.modules) {
      if (m.target !== target || weight === 0) continue;
      const name = `${m.module}.weight`;
      const list = deltas.get(name) ?? [];
      list.push({ delta: mergedDelta(m), weight });
      deltas.set(name, list);
    }
  }
  const merged = (name: string): Float32Array => {
    const w = Float32Array.from(base.float32(name));
    for (const { delta, weight } of deltas.get(name) ?? []) {
      if (delta.length !== w.length)
        throw new Error(`LoRA delta for ${name} has ${delta.length} values, the weight ${w.length}`);
      for (let i = 0; i < w.length; i++) w[i] += weight * delta[i];
    }
    return w;
  };
  const tag = createHash('sha256')
    .update(loras.map((l) => `${l.file.sha256}:${l.weight}`).join('|'))
    .digest('hex')
    .slice(0, 16);
  return {
    names: () => base.names(),
    has: (name) => base.has(name),
    shape: (name) => base.shape(name),
    float32: (name) => (deltas.has(name) ? merged(name) : base.float32(name)),
    weightData(name, dtype): WeightData {
      if (!deltas.has(name)) return base.weightData(name, dtype);
      const inner = base.weightData(name, dtype);
      return {
        byteLength: inner.byteLength,
        fingerprint: `${inner.fingerprint}+lora:${tag}`,
        read: () => {
          const values = merged(name);
          return dtype === 'float16' ? float16Bytes(values) : new Uint8Array(values.buffer);
        },
      };
    },
  };
}
