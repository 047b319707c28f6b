// Opens a Stable Diffusion 1.x checkpoint — a diffusers folder or one LDM-layout
// .safetensors file — as three weight sets under diffusers/transformers names, with their
// configs, the scheduler config and the tokenizer folder. Anything else is refused with
// the reason and what to use instead.

import { existsSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { ClipTextConfig, UNetConfig, VaeConfig } from '../architecture.ts';
import { openDiffusersFolder } from './diffusers-folder.ts';
import { pickledFileProblem, WeightsError } from './safetensors.ts';
import { openSingleFile } from './single-file.ts';
import type { WeightSet } from './weight-set.ts';

export { SD1_ONLY, SD15_SCHEDULER_CONFIG } from './family.ts';
export { WeightsError } from './safetensors.ts';
export type { WeightSet } from './weight-set.ts';

export interface Checkpoint {
  source: string;
  layout: 'diffusers' | 'single-file';
  unet: { config: UNetConfig; weights: WeightSet };
  textEncoder: { config: ClipTextConfig; weights: WeightSet };
  vae: { config: VaeConfig; weights: WeightSet };
  /** scheduler_config.json, or SD 1.5's PNDM config for a single file */
  schedulerConfig: Record<string, unknown>;
  tokenizerDir: string;
}

export interface OpenCheckpointOptions {
  /** CLIP tokenizer folder (vocab.json, merges.txt); default: tokenizer/ in or beside the checkpoint */
  tokenizerDir?: string;
}

const TOKENIZER_FILES = ['vocab.json', 'merges.txt'];

export function openCheckpoint(path: string, options: OpenCheckpointOptions = {}): Checkpoint {
  const source = resolve(path);
  if (!existsSync(source))
    throw new WeightsError(source, 'does not exist; give a diffusers folder or a .safetensors file');
  const pickled = pickledFileProblem(source);
  if (pickled) throw new WeightsError(source, pickled);
  if (statSync(source).isDirectory()) {
    return openDiffusersFolder(source, () =>
      findTokenizer(source, options.tokenizerDir, join(source, 'tokenizer')),
    );
  }
  if (!source.toLowerCase().endsWith('.safetensors')) {
    throw new WeightsError(
      source,
      'is neither a folder nor a .safetensors file; give a diffusers folder or a .safetensors file',
    );
  }
  // The tokenizer is looked for after the weights pass: a wrong model file is the more useful message.
  return openSingleFile(source, () =>
    findTokenizer(source, options.tokenizerDir, join(dirname(source), 'tokenizer')),
  );
}

function findTokenizer(source: string, given: string | undefined, beside: string): string {
  const dir = resolve(given ?? beside);
  const missing = TOKENIZER_FILES.filter((f) => !existsSync(join(dir, f)));
  if (missing.length === 0) return dir;
  const where = given ? `the tokenizer folder ${dir}` : `${dir} (the default place)`;
  throw new WeightsError(
    source,
    `needs CLIP tokenizer files, and ${where} lacks ${missing.join(' and ')}; put SD 1.5's tokenizer/ ` +
      '(vocab.json, merges.txt) there or set the tokenizer folder option',
  );
}
