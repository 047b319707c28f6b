// The world's frozen text encoder, run once per distinct caption: a world has few captions,
// so training reads their embeddings from a cache instead of encoding every step.

import type { ClipTextConfig } from '../architecture.ts';
import * as G from '../graph/index.ts';
import { buildTextEncoder } from '../models/text-encoder.ts';
import type { ClipTokenizer } from '../tokenizer/clip-tokenizer.ts';
import type { WeightSet } from '../weights/checkpoint.ts';

export class CaptionEncoder {
  private readonly cache = new Map<string, Float32Array>();

  private constructor(
    private readonly model: G.CompiledModel,
    readonly tokenizer: ClipTokenizer,
    readonly width: number,
  ) {}

  static async open(
    weights: WeightSet,
    config: ClipTextConfig,
    tokenizer: ClipTokenizer,
    threads = 1,
  ): Promise<CaptionEncoder> {
    const g = new G.Graph('world_text_encoder');
    const ids = g.input('input_ids', 'int64', ['B', config.max_position_embeddings]);
    const ctx = { graph: g, weights, dtype: 'float32' as const, namespace: '' };
    g.output('hidden', buildTextEncoder(ctx, config, ids));
    const model = await G.compile(g, { intraOpThreads: threads });
    return new CaptionEncoder(model, tokenizer, config.hidden_size);
  }

  /** [77, width] hidden states of a caption ('' is the unconditional prompt). */
  async encode(text: string): Promise<Float32Array> {
    const hit = this.cache.get(text);
    if (hit) return hit;
    const ids = this.tokenizer.encode(text).ids;
    const out = await this.model.run({
      input_ids: G.hostTensor('int64', BigInt64Array.from(ids.map(BigInt)), [1, ids.length]),
    });
    const hidden = (out.hidden.data as Float32Array).slice();
    this.cache.set(text, hidden);
    return hidden;
  }

  async release(): Promise<void> {
    await this.model.release();
  }
}
