// A named set of weights (one network of a checkpoint) in diffusers/transformers naming,
// whatever file and key each tensor actually lives under.

import type { WeightData } from '../graph/graph.ts';
import { elementCount, type SafetensorsFile, WeightsError } from './safetensors.ts';

export interface WeightSet {
  names(): string[];
  has(name: string): boolean;
  shape(name: string): number[];
  float32(name: string): Float32Array;
  weightData(name: string, dtype: 'float32' | 'float16'): WeightData;
}

/** Where one weight is stored; `shape` may differ from the stored one by size-1 axes only. */
export interface WeightSource {
  file: SafetensorsFile;
  key: string;
  shape: number[];
}

export class MappedWeightSet implements WeightSet {
  constructor(
    /** what the set is, for messages: "the UNet of /models/sd15.safetensors" */
    readonly label: string,
    private readonly sources: ReadonlyMap<string, WeightSource>,
  ) {
    for (const [name, s] of sources) {
      const stored = s.file.info(s.key).shape;
      if (elementCount(stored) !== elementCount(s.shape)) {
        throw new WeightsError(
          s.file.path,
          `tensor '${s.key}' [${stored}] cannot serve as '${name}' [${s.shape}]`,
        );
      }
    }
  }

  names(): string[] {
    return [...this.sources.keys()];
  }

  has(name: string): boolean {
    return this.sources.has(name);
  }

  shape(name: string): number[] {
    return [...this.source(name).shape];
  }

  /** The stored dtype ('F32', 'F16', …), for callers choosing a compute dtype. */
  storedDtype(name: string): string {
    const s = this.source(name);
    return s.file.info(s.key).dtype;
  }

  float32(name: string): Float32Array {
    const s = this.source(name);
    return s.file.float32(s.key);
  }

  weightData(name: string, dtype: 'float32' | 'float16'): WeightData {
    const s = this.source(name);
    return s.file.weightData(s.key, dtype);
  }

  private source(name: string): WeightSource {
    const s = this.sources.get(name);
    if (!s) throw new WeightsError(this.label, `has no weight '${name}'`);
    return s;
  }
}

/** All tensors of one file under their own names, less the listed buffers. */
export function wholeFile(
  label: string,
  file: SafetensorsFile,
  skip: (name: string) => boolean = () => false,
) {
  const sources = new Map<string, WeightSource>();
  for (const key of file.names())
    if (!skip(key)) sources.set(key, { file, key, shape: file.info(key).shape });
  return new MappedWeightSet(label, sources);
}
