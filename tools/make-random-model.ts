// Writes an SD 1.5-sized checkpoint with random weights (LDM single-file layout) and its
// tokenizer into a cache folder, then checks that it opens as SD 1.5.
// Usage: npm run random-model -- [--dir .cache/models/sd15-random] [--seed 0] [--tokenizer <dir>]
// The tokenizer defaults to $CLORA_FIXTURES/model/tokenizer, else the tiny-sd15 fixture's
// beside the repository.

import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { isEntryPoint } from '../engine/entry-point.ts';
import { openCheckpoint } from '../engine/weights/checkpoint.ts';
import { SD15_PARAMETERS, SD15_RANDOM_MODEL, verifyRandomModel, writeRandomModel } from './random-model.ts';

const repoRoot = fileURLToPath(new URL('..', import.meta.url));

export const DEFAULT_RANDOM_MODEL_DIR = resolve(repoRoot, '.cache', 'models', 'sd15-random');

export function defaultTokenizerDir(): string {
  const fixtures = process.env.CLORA_FIXTURES ?? resolve(repoRoot, '..', 'shared', 'fixtures', 'tiny-sd15');
  return resolve(fixtures, 'model', 'tokenizer');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      dir: { type: 'string', default: DEFAULT_RANDOM_MODEL_DIR },
      seed: { type: 'string', default: String(SD15_RANDOM_MODEL.seed) },
      tokenizer: { type: 'string', default: defaultTokenizerDir() },
    },
  });
  const seed = Number(values.seed);
  if (!Number.isSafeInteger(seed) || seed < 0)
    throw new Error(`--seed must be a whole number ≥ 0, got ${values.seed}`);
  const t0 = performance.now();
  let lastShown = 0;
  const model = writeRandomModel(
    values.dir,
    { ...SD15_RANDOM_MODEL, seed },
    {
      tokenizerDir: values.tokenizer,
      onProgress: (written, total) => {
        if (written - lastShown < total / 20 && written !== total) return;
        lastShown = written;
        process.stdout.write(
          `\r${((100 * written) / total).toFixed(0)}% of ${(total / 2 ** 30).toFixed(2)} GiB`,
        );
      },
    },
  );
  if (model.written) process.stdout.write('\n');
  const seconds = (performance.now() - t0) / 1000;
  console.log(
    `${model.written ? 'wrote' : 'already complete:'} ${model.path} (${(model.bytes / 2 ** 30).toFixed(2)} GiB) in ${seconds.toFixed(1)} s`,
  );
  const ck = openCheckpoint(model.path);
  for (const line of verifyRandomModel(ck, { ...SD15_RANDOM_MODEL, seed })) console.log(line);
  for (const [part, count] of Object.entries(model.parameters)) {
    const published = SD15_PARAMETERS[part as keyof typeof SD15_PARAMETERS];
    if (count !== published) throw new Error(`${part} has ${count} parameters, SD 1.5 has ${published}`);
  }
  console.log('parameter counts match SD 1.5 (UNet 859.52M, text encoder 123.06M, VAE 83.65M)');
}

if (isEntryPoint(import.meta.url)) {
  main().catch((e: unknown) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  });
}
