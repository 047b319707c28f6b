// npm run world-check: samples the world model on fixed prompts and seeds and prints what
// CLoRA depends on — subjects present, each subject token's map peak inside its subject,
// its map mass on the subject against chance — and writes the pictures as one grid.
// Usage: npm run world-check -- [--model assets/world/model] [--seeds 4] [--steps 20] [--cfg 7.5] [--out out/world-check]

import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { openCheckpoint } from '../engine/weights/checkpoint.ts';
import {
  checkFigures,
  promptText,
  type SampleResult,
  type WorldPrompt,
  WorldSampler,
} from '../engine/world/check.ts';

const repoRoot = fileURLToPath(new URL('..', import.meta.url));

export const CHECK_PROMPTS: WorldPrompt[] = [
  { subjects: ['cat'], place: 'house' },
  { subjects: ['penguin'], place: 'beach' },
  { subjects: ['dog'], place: 'forest' },
  { subjects: ['cat', 'penguin'], place: 'house' },
  { subjects: ['dog', 'cat'], place: 'beach' },
  { subjects: ['penguin', 'dog'], place: 'forest' },
];

async function writeGrid(samples: SampleResult[], columns: number, path: string): Promise<void> {
  const side = Math.round(Math.sqrt(samples[0].image.length / 3));
  const plane = side * side;
  const tiles = samples.map((s) => {
    const px = Buffer.alloc(plane * 3);
    for (let p = 0; p < plane; p++)
      for (let c = 0; c < 3; c++)
        px[p * 3 + c] = Math.max(0, Math.min(255, Math.round((s.image[c * plane + p] + 1) * 127.5)));
    return px;
  });
  const rows = Math.ceil(samples.length / columns);
  await sharp({ create: { width: columns * side, height: rows * side, channels: 3, background: 'white' } })
    .composite(
      tiles.map((t, i) => ({
        input: t,
        raw: { width: side, height: side, channels: 3 as const },
        left: (i % columns) * side,
        top: Math.floor(i / columns) * side,
      })),
    )
    .png()
    .toFile(path);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      model: { type: 'string', default: join(repoRoot, 'assets', 'world', 'model') },
      seeds: { type: 'string', default: '4' },
      steps: { type: 'string', default: '20' },
      cfg: { type: 'string', default: '7.5' },
      threads: { type: 'string', default: '1' },
      out: { type: 'string', default: 'out/world-check' },
    },
  });
  const seeds = Number(values.seeds);
  const steps = Number(values.steps);
  const sampler = await WorldSampler.open(
    openCheckpoint(resolve(values.model as string)),
    Number(values.threads),
  );
  const samples: SampleResult[] = [];
  try {
    for (const prompt of CHECK_PROMPTS) {
      for (let seed = 0; seed < seeds; seed++) {
        const s = await sampler.sample(prompt, seed, steps, Number(values.cfg));
        samples.push(s);
        const found = s.detections.map((d) => `${d.subject}/${d.look}`).join(', ') || 'nothing';
        console.log(`${promptText(prompt)} (seed ${seed}): found ${found}`);
      }
    }
  } finally {
    await sampler.release();
  }
  const f = checkFigures(samples);
  console.log(`images: ${f.images}`);
  console.log(`all prompted subjects present: ${(100 * f.allPresent).toFixed(1)} %`);
  console.log(`subject map peak inside its subject: ${(100 * f.peakInside).toFixed(1)} % (goal ≥ 90 %)`);
  console.log(
    `subject map mass on its subject: ${(100 * f.massOnSubject).toFixed(1)} % (chance ${(100 * f.chance).toFixed(1)} %)`,
  );
  mkdirSync(values.out as string, { recursive: true });
  const grid = join(values.out as string, 'samples.png');
  await writeGrid(samples, seeds, grid);
  console.log(`wrote ${grid} (one row a prompt, one column a seed)`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((e) => {
    console.error(e instanceof Error ? (e.stack ?? e.message) : e);
    process.exit(1);
  });
}
