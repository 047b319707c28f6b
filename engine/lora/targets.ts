// The layers a LoRA may adapt, indexed by every name a LoRA file may use for them. The index
// is built from the base model's own weight names (each `X.weight` is a module X), so a key
// is matched against real layers, never guessed back from underscores.

import { unetKeyMap, unetLayoutFromDiffusers } from '../weights/ldm-layout.ts';
import type { WeightSet } from '../weights/weight-set.ts';

export type LoraTarget = 'unet' | 'text_encoder';

export interface TargetLayer {
  target: LoraTarget;
  module: string;
  /** the base weight's shape: [out, in] or [out, in, kh, kw] */
  shape: number[];
}

export interface BaseWeights {
  unet: WeightSet;
  textEncoder: WeightSet;
}

export class TargetIndex {
  /** kohya module keys (diffusers and LDM spellings) → layers; more than one only on a name clash */
  private readonly kohya = new Map<string, TargetLayer[]>();
  private readonly modules: Record<LoraTarget, Map<string, TargetLayer>> = {
    unet: new Map(),
    text_encoder: new Map(),
  };

  constructor(base: BaseWeights) {
    const unetNames = base.unet.names();
    const ldm = unetKeyMap(unetLayoutFromDiffusers(unetNames));
    for (const [target, set, prefix] of [
      ['unet', base.unet, 'lora_unet_'],
      ['text_encoder', base.textEncoder, 'lora_te_'],
    ] as const) {
      for (const name of set.names()) {
        if (!name.endsWith('.weight')) continue;
        const shape = set.shape(name);
        if (shape.length !== 2 && shape.length !== 4) continue;
        const module = name.slice(0, -'.weight'.length);
        const layer: TargetLayer = { target, module, shape };
        this.modules[target].set(module, layer);
        this.addKohya(prefix + module.replaceAll('.', '_'), layer);
        if (target === 'unet') {
          // kohya files made from LDM checkpoints name UNet layers the LDM way (input_blocks_1_1_proj_in)
          const old = ldm.toLdm(module);
          if (old && old.name !== module) this.addKohya(prefix + old.name.replaceAll('.', '_'), layer);
        }
      }
    }
  }

  /** Layers a kohya module key names (usually one). */
  byKohya(key: string): TargetLayer[] {
    return this.kohya.get(key) ?? [];
  }

  /** The layer a diffusers/PEFT module path names, with or without a unet./text_encoder. prefix. */
  byPath(path: string): TargetLayer | undefined {
    const bare = path.startsWith('base_model.model.') ? path.slice('base_model.model.'.length) : path;
    if (bare.startsWith('unet.')) return this.modules.unet.get(bare.slice(5));
    if (bare.startsWith('text_encoder.')) return this.modules.text_encoder.get(bare.slice(13));
    // Unprefixed files are UNet-only in diffusers' convention; text-encoder paths start with text_model.
    return this.modules.unet.get(bare) ?? this.modules.text_encoder.get(bare);
  }

  private addKohya(key: string, layer: TargetLayer): void {
    const list = this.kohya.get(key);
    if (!list) this.kohya.set(key, [layer]);
    else if (!list.some((l) => l.target === layer.target && l.module === layer.module)) list.push(layer);
  }
}

const cache = new WeakMap<WeightSet, WeakMap<WeightSet, TargetIndex>>();

/** The index for a base model, built once per pair of weight sets. */
export function targetIndex(base: BaseWeights): TargetIndex {
  let inner = cache.get(base.unet);
  if (!inner) {
    inner = new WeakMap();
    cache.set(base.unet, inner);
  }
  let index = inner.get(base.textEncoder);
  if (!index) {
    index = new TargetIndex(base);
    inner.set(base.textEncoder, index);
  }
  return index;
}
