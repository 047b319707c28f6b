// Weights held in memory as float32 arrays, named as the model builders ask for them: the
// live parameters of a training run, readable by the same builders as a checkpoint's
// weights and written back as safetensors.

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { bytesOf } from '../graph/dtype.ts';
import type { WeightData } from '../graph/graph.ts';
import type { WeightSet } from '../weights/checkpoint.ts';
import { encodeSafetensors, float16Bytes, SafetensorsFile } from '../weights/safetensors.ts';

export interface StoredTensor {
  shape: number[];
  values: Float32Array;
}

export class TensorStore implements WeightSet {
  readonly tensors = new Map<string, StoredTensor>();

  constructor(readonly label: string) {}

  /** Every tensor of a weight set (or those `keep` picks), copied. */
  static copyOf(
    label: string,
    weights: WeightSet,
    keep: (name: string) => boolean = () => true,
  ): TensorStore {
    const store = new TensorStore(label);
    for (const name of weights.names())
      if (keep(name)) store.set(name, weights.shape(name), weights.float32(name).slice());
    return store;
  }

  /** A safetensors file's tensors as float32 (whatever their stored float type). */
  static read(path: string, label = path): TensorStore {
    const file = SafetensorsFile.open(path);
    try {
      return TensorStore.copyOf(label, {
        names: () => file.names(),
        has: (n) => file.names().includes(n),
        shape: (n) => file.info(n).shape,
        float32: (n) => file.float32(n),
        weightData: (n, d) => file.weightData(n, d),
      });
    } finally {
      file.close();
    }
  }

  static metadataOf(path: string): Record<string, string> {
    const bytes = readFileSync(path);
    const length = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
    const header = JSON.parse(bytes.subarray(8, 8 + length).toString('utf8'));
    return header.__metadata__ ?? {};
  }

  set(name: string, shape: readonly number[], values: Float32Array): void {
    const count = shape.reduce((a, b) => a * b, 1);
    if (values.length !== count)
      throw new RangeError(`${this.label}: '${name}' [${shape}] needs ${count} values, got ${values.length}`);
    this.tensors.set(name, { shape: [...shape], values });
  }

  names(): string[] {
    return [...this.tensors.keys()];
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  shape(name: string): number[] {
    return [...this.get(name).shape];
  }

  /** The live array: a training step updates it in place. */
  float32(name: string): Float32Array {
    return this.get(name).values;
  }

  weightData(name: string, dtype: 'float32' | 'float16'): WeightData {
    const { values } = this.get(name);
    const read = () => (dtype === 'float16' ? float16Bytes(values) : bytesOf(values.slice()));
    const fingerprint = `${dtype}:${createHash('sha256').update(bytesOf(values)).digest('hex')}`;
    return { byteLength: values.length * (dtype === 'float16' ? 2 : 4), fingerprint, read };
  }

  parameterCount(): number {
    let n = 0;
    for (const t of this.tensors.values()) n += t.values.length;
    return n;
  }

  /** Safetensors bytes of every tensor (or those `keep` picks), in float32 or float16. */
  encode(
    metadata?: Record<string, string>,
    options: {
      dtype?: 'F32' | 'F16';
      keep?: (name: string) => boolean;
      rename?: (name: string) => string;
    } = {},
  ): Uint8Array {
    const dtype = options.dtype ?? 'F32';
    const keep = options.keep ?? (() => true);
    const rename = options.rename ?? ((n: string) => n);
    return encodeSafetensors(
      [...this.tensors]
        .filter(([name]) => keep(name))
        .map(([name, t]) => ({
          name: rename(name),
          dtype,
          shape: t.shape,
          data: dtype === 'F16' ? float16Bytes(t.values) : bytesOf(t.values),
        })),
      metadata,
    );
  }

  private get(name: string): StoredTensor {
    const t = this.tensors.get(name);
    if (!t) throw new RangeError(`${this.label} has no tensor '${name}'`);
    return t;
  }
}
