// SD 1.5 at its native 512×512 on the SD 1.5-sized random model (npm run random-model), with
// rank-8 kohya LoRAs on every attention projection. Each memory figure is the peak RSS of a
// child process that does only that work:
// - plain generation (2 steps, batch 2)                                   peak RSS (goal ≤ 5 GiB)
// - one CLoRA step (one guided update + one denoise) with 1, 2, 4, 8 LoRAs  time, peak RSS
//                                                  (goals: 2 LoRAs ≤ 8 GiB, 8 LoRAs ≤ 16 GiB)
// - chunked ÷ materialised attention, one guided pass and one denoise at 256², same run (goal ≤ 1)
// - CLoRA ÷ plain at 512²: 2 steps by default (about 10 minutes on two cores); NATIVE_BENCH_LONG=1
//   runs the 10-step schedule the goal is stated for (goal ≤ 4, about an hour on two cores).
// NATIVE_BENCH_PARTS picks parts: plain, sweep, kernels, ratio (default all); NATIVE_BENCH_LORAS
// picks the sweep's LoRA counts (default 1,2,4,8).

import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { withEngineMallocEnv } from '../../engine/allocator.ts';
import { Engine } from '../../engine/clora/engine.ts';
import { compileCLoraUNet } from '../../engine/clora/graphs.ts';
import { groupFeeds } from '../../engine/clora/loss.ts';
import { planComposition } from '../../engine/clora/plan.ts';
import * as G from '../../engine/graph/index.ts';
import { loraFeeds } from '../../engine/lora/gated.ts';
import { ATTENTION_KERNELS, type AttentionKernel } from '../../engine/models/attention.ts';
import { gaussianNoise } from '../../engine/schedulers/noise.ts';
import { repoRoot } from '../fixtures.ts';
import { CACHE, ENGINE, loraCacheFor, realModelPath, spec, writeRandomLoras } from './clora.bench.ts';
import { type Report, timeSideBySide } from './harness.ts';

const PARTS = (process.env.NATIVE_BENCH_PARTS ?? 'plain,sweep,kernels,ratio').split(',');
const SWEEP_LORAS = (process.env.NATIVE_BENCH_LORAS ?? '1,2,4,8').split(',').map(Number);
const GiB = 1024;

/** Runs this file as a child doing one task; returns the JSON line it prints last. */
function child(task: string, ...args: string[]): Record<string, number> {
  const out = execFileSync(
    process.execPath,
    ['--import', 'tsx', fileURLToPath(import.meta.url), task, ...args],
    {
      encoding: 'utf8',
      cwd: repoRoot,
      maxBuffer: 1 << 20,
      timeout: 3 * 3_600_000,
      stdio: ['ignore', 'pipe', 'inherit'],
      // as npm start and npm run worker run the engine
      env: withEngineMallocEnv(),
    },
  );
  return JSON.parse(out.trim().split('\n').pop()!);
}

const peakRssMb = () => process.resourceUsage().maxRSS / 1024;

async function plainChild(modelPath: string) {
  const engine = await Engine.load({
    ...ENGINE,
    modelPath,
    cacheDir: CACHE,
  });
  const s = spec([], 2, 512, 'none');
  const result = await engine.compose(s);
  return { seconds: result.timings.total / 1000, peakRssMb: peakRssMb() };
}

async function stepChild(modelPath: string, size: number, n: number) {
  const engine = await Engine.load({
    ...ENGINE,
    modelPath,
    cacheDir: CACHE,
  });
  const loras = writeRandomLoras(engine, loraCacheFor(modelPath), n);
  const s = spec(loras, 2, size);
  s.guidance = { ...s.guidance, updateUntil: 2, iterativeSteps: [], iterations: 1 };
  await engine.compose({ ...s, steps: 1, guidance: { ...s.guidance, updateUntil: 1 } }); // compile first
  const result = await engine.compose(s);
  return { perStepMs: (result.timings.guidance + result.timings.denoise) / 2, peakRssMb: peakRssMb() };
}

/** One guided pass and one 2-LoRA denoise with each kernel, side by side, at 256². */
async function kernelsChild(modelPath: string) {
  const engine = await Engine.load({
    ...ENGINE,
    modelPath,
    cacheDir: CACHE,
  });
  const ck = engine.checkpoint;
  const loras = writeRandomLoras(engine, loraCacheFor(modelPath), 2);
  const plan = planComposition(spec(loras, 2, 256), engine.tokenizer);
  const files = loras.map((l) => engine.loadLora(l));
  const options = (attention: AttentionKernel) => ({
    prepackWeights: ENGINE.prepackWeights,
    memoryArena: false,
    provider: ENGINE.provider,
    dtype: ENGINE.dtype,
    intraOpThreads: ENGINE.threads,
    optimization: ENGINE.optimization,
    cacheDir: CACHE,
    lora: true,
    attention,
  });
  const c = ck.unet.config;
  const h = 32;
  const n = plan.branches.length;
  const latent = gaussianNoise(5, c.in_channels * h * h, 0);
  const context = (rows: number) => {
    const one = gaussianNoise(6, 77 * c.cross_attention_dim, 0);
    const all = new Float32Array(rows * one.length);
    for (let i = 0; i < rows; i++) all.set(one, i * one.length);
    return G.hostTensor('float32', all, [rows, 77, c.cross_attention_dim]);
  };
  const gates = (slots: Parameters<typeof loraFeeds>[0], rows: number[]) =>
    loraFeeds(
      slots,
      files.map((f, k) => ({ modules: f.modules, weights: rows.map((b) => (b === k + 1 ? 1 : 0)) })),
      rows.length,
    );
  const run: Record<string, () => Promise<unknown>> = {};
  for (const kernel of ATTENTION_KERNELS) {
    // each kernel's UNet as the engine holds it: one session for the denoise and guidance graphs
    const { guidance, denoise } = await compileCLoraUNet(ck, options(kernel));
    const branches = plan.branches.map((_, i) => i);
    const guidanceFeeds = {
      latent: G.hostTensor('float32', latent, [1, c.in_channels, h, h]),
      timestep: G.hostTensor('float32', new Float32Array(n).fill(900), [n]),
      context: context(n),
      ...groupFeeds(plan.groups, n, 77),
      ...gates(guidance.slots!, branches),
    };
    const rows = [...branches, ...branches];
    const sample = new Float32Array(2 * n * latent.length);
    for (let i = 0; i < 2 * n; i++) sample.set(latent, i * latent.length);
    const denoiseFeeds = {
      sample: G.hostTensor('float32', sample, [2 * n, c.in_channels, h, h]),
      timestep: G.hostTensor('float32', new Float32Array(2 * n).fill(900), [2 * n]),
      context: context(2 * n),
      ...gates(denoise.slots!, rows),
    };
    run[`guidance_${kernel}`] = () => guidance.model.run(guidanceFeeds);
    run[`denoise_${kernel}`] = () => denoise.model.run(denoiseFeeds);
  }
  const t = await timeSideBySide(run, { warmup: 1, rounds: 3 });
  return t;
}

async function ratioChild(modelPath: string, steps: number) {
  const engine = await Engine.load({
    ...ENGINE,
    modelPath,
    cacheDir: CACHE,
  });
  const loras = writeRandomLoras(engine, loraCacheFor(modelPath), 2);
  const clora = spec(loras, steps, 512);
  const plain = spec([], steps, 512, 'none');
  await engine.compose({ ...clora, steps: 1 }); // compile the guidance graph outside the timing
  const t = await timeSideBySide(
    { clora: () => engine.compose(clora), plain: () => engine.compose(plain) },
    { warmup: 0, rounds: 1 },
  );
  return { clora: t.clora, plain: t.plain, peakRssMb: peakRssMb() };
}

export async function run(report: Report): Promise<void> {
  const model = realModelPath();
  if (!model) {
    console.log('native: skipped — write the SD 1.5-sized random model first: npm run random-model');
    return;
  }
  if (PARTS.includes('plain')) {
    const r = child('--plain', model);
    report('native.plain_512_b2.peak_rss', r.peakRssMb / GiB, 'GiB', '≤ 5');
    report('native.plain_512_2_steps.time', r.seconds, 's');
  }
  if (PARTS.includes('sweep')) {
    for (const n of SWEEP_LORAS) {
      const r = child('--step', model, '512', String(n));
      const goal = n === 2 ? '≤ 8' : n === 8 ? '≤ 16' : undefined;
      report(`native.clora_512.loras_${n}.time_per_step`, r.perStepMs / 1000, 's');
      report(`native.clora_512.loras_${n}.peak_rss`, r.peakRssMb / GiB, 'GiB', goal);
    }
  }
  if (PARTS.includes('kernels')) {
    const t = child('--kernels', model);
    for (const pass of ['guidance', 'denoise']) {
      for (const kernel of ATTENTION_KERNELS)
        report(`native.kernels_256.${pass}_${kernel}`, t[`${pass}_${kernel}`] / 1000, 's');
      report(
        `native.kernels_256.${pass}_chunked_over_materialised`,
        t[`${pass}_chunked`] / t[`${pass}_materialised`],
        'x',
        '≤ 1.0',
      );
      report(
        `native.kernels_256.${pass}_fused_over_materialised`,
        t[`${pass}_fused`] / t[`${pass}_materialised`],
        'x',
      );
    }
  }
  if (PARTS.includes('ratio')) {
    const steps = process.env.NATIVE_BENCH_LONG === '1' ? 10 : 2;
    const r = child('--ratio', model, String(steps));
    report(`native.clora_512_${steps}_steps`, r.clora / 1000, 's');
    report(`native.plain_512_${steps}_steps`, r.plain / 1000, 's');
    report(
      `native.clora_over_plain_512_${steps}_steps`,
      r.clora / r.plain,
      'x',
      steps === 10 ? '≤ 4 (moonshot 3)' : '≤ 4 at 10 steps (NATIVE_BENCH_LONG=1)',
    );
    report(`native.clora_512_${steps}_steps.peak_rss`, r.peakRssMb / GiB, 'GiB');
  }
}

const [task, ...args] = process.argv.slice(2);
const tasks: Record<string, () => Promise<unknown>> = {
  '--plain': () => plainChild(args[0]),
  '--step': () => stepChild(args[0], Number(args[1]), Number(args[2])),
  '--kernels': () => kernelsChild(args[0]),
  '--ratio': () => ratioChild(args[0], Number(args[1])),
};
if (process.argv[1] === fileURLToPath(import.meta.url) && task in tasks) {
  process.stdout.write(`${JSON.stringify(await tasks[task]())}\n`);
  process.exit(0);
}
