// Composition in the world the project trains (npm run train-world; the model and its LoRAs
// in assets/world): does each subject come out in its own LoRA's look?
// - the base model's maps: each subject token's map peak inside its subject   (goal ≥ 90 %)
// - per method (none, merge, composite, clora, clora without update / without mask / with
//   smaller step sizes), over
//   WORLD_BENCH_SEEDS seeds (default 20): both subjects present, both in their own LoRA's look
//   (goal: CLoRA ≥ 80 % and ≥ 2× merge), leakage — a subject in the other LoRA's look (goal ≤ 10 %),
//   and IoU of each LoRA's mask with its subject's region (goal ≥ 0.5).
// The detector (engine/world/detector.ts) reads colour and shape from the decoded pictures.
// WORLD_DIR=<folder> benches another train-world output.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Engine } from '../../engine/clora/engine.ts';
import type { CompositionSpec, Method } from '../../engine/clora/spec.ts';
import { openCheckpoint } from '../../engine/weights/checkpoint.ts';
import { checkFigures, WorldSampler } from '../../engine/world/check.ts';
import { compositionOutcome, worldLoras, worldSpec } from '../../engine/world/composition.ts';
import { WORLD_DIR } from '../../engine/world/files.ts';
import { WORLD_SAMPLING } from '../../engine/world/model.ts';
import type { Report } from './harness.ts';

/** WORLD_DIR names another run's folder. */
const WORLD = process.env.WORLD_DIR ?? WORLD_DIR;
const SEEDS = Number(process.env.WORLD_BENCH_SEEDS ?? 20);
const STEPS = WORLD_SAMPLING.steps;

interface Variant {
  name: string;
  method: Method;
  guidance?: Partial<CompositionSpec['guidance']>;
}

const VARIANTS: Variant[] = [
  { name: 'none', method: 'none' },
  { name: 'merge', method: 'merge' },
  { name: 'composite', method: 'composite' },
  { name: 'clora', method: 'clora' },
  { name: 'clora without update', method: 'clora', guidance: { update: false } },
  { name: 'clora without mask', method: 'clora', guidance: { mask: false } },
  // The published step size (20) is SD 1.5's; the world's latents are scenes drawn on the grid, not a VAE's.
  { name: 'clora step size 10', method: 'clora', guidance: { stepSize: 10 } },
  { name: 'clora step size 5', method: 'clora', guidance: { stepSize: 5 } },
];

async function baseMaps(report: Report): Promise<void> {
  const sampler = await WorldSampler.open(openCheckpoint(join(WORLD, 'model')));
  const samples = [];
  try {
    for (let seed = 0; seed < SEEDS; seed++)
      samples.push(await sampler.sample({ subjects: ['cat', 'penguin'], place: 'house' }, seed, STEPS));
  } finally {
    await sampler.release();
  }
  const f = checkFigures(samples);
  report('world base: both subjects present', 100 * f.allPresent, '%');
  report('world base: subject map peak inside its subject', 100 * f.peakInside, '%', '≥ 90 %');
  report(
    'world base: subject map mass on its subject',
    100 * f.massOnSubject,
    '%',
    `> chance ${(100 * f.chance).toFixed(1)} %`,
  );
}

async function methods(report: Report): Promise<void> {
  const engine = await Engine.load({ modelPath: join(WORLD, 'model'), threads: 2 });
  try {
    const loras = worldLoras(WORLD);
    const bothCorrectBy: Record<string, number> = {};
    for (const v of VARIANTS) {
      let bothCorrect = 0;
      let present = 0;
      let leaked = 0;
      let iouSum = 0;
      let iouCount = 0;
      const outcomes: string[] = [];
      for (let seed = 0; seed < SEEDS; seed++) {
        const spec = worldSpec(loras, { seed, steps: STEPS, method: v.method, guidance: v.guidance });
        const result = await engine.compose(spec);
        const outcome = compositionOutcome(result, loras);
        if (outcome.ownLooks) bothCorrect++;
        if (outcome.present) present++;
        if (outcome.leaked) leaked++;
        outcomes.push(`${seed} ${outcome.ownLooks ? 'ok' : `(${outcome.summary})`}`);
        outcome.found.forEach((d, i) => {
          const mask = result.masks[i + 1];
          if (!d || !mask || v.method !== 'clora') return;
          iouSum += iou(mask, result.grid.cols, d.mask, result.width); // the world is square
          iouCount++;
        });
      }
      // Which seeds came out right, and what the detector saw on the others: where to look when a goal is missed.
      console.log(`world ${v.name} by seed: ${outcomes.join('; ')}`);
      bothCorrectBy[v.name] = bothCorrect / SEEDS;
      report(`world ${v.name}: both subjects present`, (100 * present) / SEEDS, '%');
      report(
        `world ${v.name}: both subjects in their own look`,
        (100 * bothCorrect) / SEEDS,
        '%',
        v.name === 'clora' ? '≥ 80 %' : undefined,
      );
      report(
        `world ${v.name}: leakage`,
        (100 * leaked) / SEEDS,
        '%',
        v.name === 'clora' ? '≤ 10 %' : undefined,
      );
      if (iouCount) report(`world ${v.name}: mask IoU with the subject`, iouSum / iouCount, '', '≥ 0.5');
    }
    report(
      'world clora ÷ merge: both in their own look',
      bothCorrectBy.clora / Math.max(bothCorrectBy.merge, 1 / SEEDS),
      '×',
      '≥ 2',
    );
  } finally {
    await engine.close();
  }
}

/** IoU of a res×res mask with a side×side region, compared on the mask's grid. */
function iou(mask: Uint8Array, res: number, region: Uint8Array, side: number): number {
  const cell = side / res;
  let inter = 0;
  let union = 0;
  for (let p = 0; p < res * res; p++) {
    const x0 = (p % res) * cell;
    const y0 = Math.floor(p / res) * cell;
    let covered = 0;
    for (let y = y0; y < y0 + cell; y++) for (let x = x0; x < x0 + cell; x++) covered += region[y * side + x];
    const r = covered / (cell * cell) >= 0.5 ? 1 : 0;
    if (mask[p] && r) inter++;
    if (mask[p] || r) union++;
  }
  return union ? inter / union : 0;
}

export async function run(report: Report): Promise<void> {
  if (!existsSync(join(WORLD, 'model', 'unet'))) {
    throw new Error('no world model in assets/world/model; train one with npm run train-world');
  }
  await baseMaps(report);
  if (!worldLoras(WORLD).every((l) => existsSync(l.path))) {
    console.log(
      'world: no LoRAs in assets/world/loras yet (train-world writes them after the UNet); methods skipped',
    );
    return;
  }
  await methods(report);
}
