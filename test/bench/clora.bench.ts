// CLoRA benchmarks on the tiny fixture model (50 steps) and, when the random SD 1.5-sized
// model is in the cache (npm run random-model), on the real-size model at 256×256 (10 steps,
// the schedule scaled); CLORA_BENCH_PARTS=tiny or =real runs one half:
// - CLoRA with 2 LoRAs ÷ plain single-prompt generation, same steps and size   (goal ≤ 4)
// - one batched denoise call for 3 branches ÷ three sequential calls             (goal ≤ 0.9)
// - time per step and peak memory for 1, 2, 4, 8 LoRAs                          (goal: 8 at 256² within 24 GB)

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_SAMPLING } from '../../commands/compose/index.ts';
import { loadConfig } from '../../config/index.ts';
import { Engine } from '../../engine/clora/engine.ts';
import { compileDenoiseUNet } from '../../engine/clora/graphs.ts';
import { type EngineModels, runPlan } from '../../engine/clora/pipeline.ts';
import { planComposition } from '../../engine/clora/plan.ts';
import { type CompositionSpec, compositionSpec, type LoraRef } from '../../engine/clora/spec.ts';
import { isEntryPoint } from '../../engine/entry-point.ts';
import * as G from '../../engine/graph/index.ts';
import { loraFeeds } from '../../engine/lora/gated.ts';
import { compileTextEncoder } from '../../engine/models/compiled.ts';
import { gaussianNoise } from '../../engine/schedulers/noise.ts';
import { encodeSafetensors } from '../../engine/weights/safetensors.ts';
import { fixtureDir, repoRoot } from '../fixtures.ts';
import { type Report, timeSideBySide } from './harness.ts';

export const CACHE = resolve(repoRoot, '.cache', 'models');
/** CLORA_BENCH_PARTS=tiny or =real runs one half (default both). */
const PARTS = (process.env.CLORA_BENCH_PARTS ?? 'tiny,real').split(',');
const WORDS = ['cat', 'dog', 'fox', 'owl', 'bear', 'frog', 'duck', 'deer'];
/** Device, precision, threads and optimisation level from the configuration (ENGINE_DEVICE=cuda on a GPU host). */
export const ENGINE = (() => {
  const { device, dtype, threads, optimization, attention, prepackWeights } = loadConfig().engine;
  return { provider: device, dtype, threads, optimization, attention, prepackWeights };
})();

/**
 * The published schedule scaled to `steps`: update points and burst positions in proportion
 * (compositionSpec does that), and the burst length too, so guided passes per step stay as in
 * the published 50-step run (bursts of 20 at 50 steps, of 4 at 10).
 */
export function spec(
  loras: LoraRef[],
  steps: number,
  size: number,
  method: CompositionSpec['method'] = 'clora',
): CompositionSpec {
  const words = WORDS.slice(0, loras.length);
  const base = compositionSpec({
    ...DEFAULT_SAMPLING,
    prompt: `a ${words.join(' and a ')} in a house`,
    subjects: loras.map((lora, i) => ({ word: words[i], lora, weight: 1, triggers: [] })),
    seed: 1,
    steps,
    width: size,
    height: size,
    method,
  });
  base.guidance.iterations = Math.max(1, Math.round((20 * steps) / 50));
  return base;
}

function networkOptions() {
  const { provider, dtype, threads, optimization, attention, prepackWeights } = ENGINE;
  return {
    provider,
    dtype,
    intraOpThreads: threads,
    optimization,
    attention,
    prepackWeights,
    memoryArena: false,
    cacheDir: CACHE,
  };
}

/** Plain generation on graphs without LoRA branches: the fairest baseline. */
async function plainModels(engine: Engine): Promise<EngineModels> {
  const base = engine.models();
  const [unet, textEncoder] = await Promise.all([
    compileDenoiseUNet(engine.checkpoint, networkOptions()),
    compileTextEncoder(engine.checkpoint, networkOptions()),
  ]);
  return { ...base, unet: async () => unet, textEncoder };
}

async function ratioAgainstPlain(
  report: Report,
  engine: Engine,
  label: string,
  loras: LoraRef[],
  steps: number,
  size: number,
  withPublished: boolean,
) {
  const clora = spec(loras, steps, size);
  const published = { ...clora, guidance: { ...clora.guidance, published: true } };
  const plain = spec([], steps, size, 'none');
  const plainNets = await plainModels(engine);
  const plainPlan = planComposition(plain, engine.tokenizer);
  // Compile the guidance graphs outside the timing.
  await engine.compose({ ...clora, steps: 2 });
  if (withPublished) await engine.compose({ ...published, steps: 2 });
  const runs: Record<string, () => Promise<unknown>> = {
    clora: () => engine.compose(clora),
    plain: () => runPlan(plainNets, plainPlan, plain),
  };
  if (withPublished) runs.published = () => engine.compose(published);
  const t = await timeSideBySide(runs, { warmup: 0, rounds: 1 });
  const iterations = clora.guidance.iterations;
  report(`clora.${label}.clora_2_loras_${steps}_steps_bursts_of_${iterations}`, t.clora / 1000, 's');
  report(`clora.${label}.plain_${steps}_steps`, t.plain / 1000, 's');
  report(`clora.${label}.clora_over_plain`, t.clora / t.plain, 'x', '≤ 4');
  if (withPublished) {
    report(
      `clora.${label}.published_behaviour_over_plain`,
      t.published / t.plain,
      'x',
      'published code ≈ 9–10',
    );
    report(`clora.${label}.clora_speedup_over_published_behaviour`, t.published / t.clora, 'x');
  }
}

async function batchedOverSequential(
  report: Report,
  engine: Engine,
  label: string,
  loras: LoraRef[],
  size: number,
) {
  const unet = await engine.models().unet({ loraConvs: false });
  const files = loras.map((l) => engine.loadLora(l));
  const c = engine.checkpoint.unet.config;
  const h = size / 8;
  const latent = gaussianNoise(5, c.in_channels * h * h, 0);
  const context = gaussianNoise(6, 77 * c.cross_attention_dim, 0);
  // Branch 0 base, branch i LoRA i; each as an uncond/cond pair.
  const feedsFor = (branches: number[]) => {
    const batch = 2 * branches.length;
    const sample = new Float32Array(batch * latent.length);
    const ctx = new Float32Array(batch * context.length);
    for (let i = 0; i < batch; i++) {
      sample.set(latent, i * latent.length);
      ctx.set(context, i * context.length);
    }
    const rows = [...branches, ...branches];
    return {
      sample: G.hostTensor('float32', sample, [batch, c.in_channels, h, h]),
      timestep: G.hostTensor('float32', new Float32Array(batch).fill(500), [batch]),
      context: G.hostTensor('float32', ctx, [batch, 77, c.cross_attention_dim]),
      ...loraFeeds(
        unet.slots!,
        files.map((f, k) => ({ modules: f.modules, weights: rows.map((b) => (b === k + 1 ? 1 : 0)) })),
        batch,
      ),
    };
  };
  const all = feedsFor([0, 1, 2]);
  const single = [feedsFor([0]), feedsFor([1]), feedsFor([2])];
  const t = await timeSideBySide(
    {
      batched: () => unet.model.run(all),
      sequential: async () => {
        for (const f of single) await unet.model.run(f);
      },
    },
    { warmup: 1, rounds: label === 'tiny' ? 7 : 3 },
  );
  report(`clora.${label}.denoise_3_branches_batched`, t.batched, 'ms');
  report(`clora.${label}.denoise_3_branches_sequential`, t.sequential, 'ms');
  report(`clora.${label}.batched_over_sequential`, t.batched / t.sequential, 'x', '≤ 0.9');
}

/** Kohya LoRAs of rank `rank` on every attention projection of the checkpoint's UNet. */
export function writeRandomLoras(engine: Engine, dir: string, count: number, rank = 8): LoraRef[] {
  mkdirSync(dir, { recursive: true });
  const w = engine.checkpoint.unet.weights;
  const modules = w
    .names()
    .filter((n) => /attn[12]\.to_(q|k|v|out\.0)\.weight$/.test(n))
    .map((n) => n.slice(0, -'.weight'.length));
  return Array.from({ length: count }, (_, k) => {
    const path = join(dir, `random-${rank}-${k}.safetensors`);
    if (!existsSync(path)) {
      let seed = 100 * k;
      const tensors = modules.flatMap((m) => {
        const [out, inF] = w.shape(`${m}.weight`);
        const key = `lora_unet_${m.replaceAll('.', '_')}`;
        const down = gaussianNoise(seed++, rank * inF, 0).map((v) => v / Math.sqrt(inF));
        const up = gaussianNoise(seed++, out * rank, 0).map((v) => v * 0.01);
        return [
          { name: `${key}.lora_down.weight`, dtype: 'F32' as const, shape: [rank, inF], data: down },
          { name: `${key}.lora_up.weight`, dtype: 'F32' as const, shape: [out, rank], data: up },
          { name: `${key}.alpha`, dtype: 'F32' as const, shape: [], data: Float32Array.of(rank) },
        ];
      });
      writeFileSync(path, encodeSafetensors(tensors as never, { ss_network_module: 'networks.lora' }));
    }
    return { name: `random${k}`, path };
  });
}

/** One CLoRA step (one update, one denoise) with n LoRAs, in a child process for its peak RSS. */
function loraSweep(report: Report, label: string, modelPath: string, size: number) {
  for (const n of [1, 2, 4, 8]) {
    const out = execFileSync(
      process.execPath,
      ['--import', 'tsx', fileURLToPath(import.meta.url), '--sweep', modelPath, String(size), String(n)],
      {
        encoding: 'utf8',
        cwd: repoRoot,
        maxBuffer: 1 << 20,
        timeout: 1_800_000,
      },
    );
    const { perStepMs, peakRssMb } = JSON.parse(out.trim().split('\n').pop()!);
    report(`clora.${label}.loras_${n}.time_per_step`, perStepMs / 1000, 's');
    report(
      `clora.${label}.loras_${n}.peak_rss`,
      peakRssMb / 1024,
      'GiB',
      n === 8 && size === 256 ? '≤ 24 at 256² with 8 LoRAs' : undefined,
    );
  }
}

async function sweepChild(modelPath: string, size: number, n: number) {
  const engine = await Engine.load({ ...ENGINE, modelPath, cacheDir: CACHE });
  const loras = writeRandomLoras(engine, loraCacheFor(modelPath), n);
  const s = spec(loras, 2, size);
  s.guidance = { ...s.guidance, updateUntil: 2, iterativeSteps: [], iterations: 1 };
  await engine.compose({ ...s, steps: 1, guidance: { ...s.guidance, updateUntil: 1 } }); // compile everything first
  const result = await engine.compose(s);
  const perStepMs = (result.timings.guidance + result.timings.denoise) / 2;
  const peakRssMb = process.resourceUsage().maxRSS / 1024;
  process.stdout.write(`${JSON.stringify({ perStepMs, peakRssMb })}\n`);
  await engine.close();
}

/** Random LoRAs are shaped for one model: keep them apart per model. */
export function loraCacheFor(modelPath: string): string {
  const id = createHash('sha256').update(resolve(modelPath)).digest('hex').slice(0, 12);
  return resolve(repoRoot, '.cache', 'loras-random', id);
}

export function realModelPath(): string | undefined {
  const dir = resolve(repoRoot, '.cache', 'models', 'sd15-random');
  const file = join(dir, 'model.safetensors');
  return existsSync(file) ? file : undefined;
}

export async function run(report: Report): Promise<void> {
  if (PARTS.includes('tiny')) await tinyPart(report);
  if (PARTS.includes('real')) await realPart(report);
}

async function tinyPart(report: Report): Promise<void> {
  const dir = fixtureDir();
  const tiny = await Engine.load({ ...ENGINE, modelPath: join(dir, 'model') });
  const fixtureLoras = [
    { name: 'tabby', path: join(dir, 'loras', 'lora_i_kohya_unet_te.safetensors') },
    { name: 'plush', path: join(dir, 'loras', 'lora_ii_kohya_unet_attn_ff.safetensors') },
  ];
  await ratioAgainstPlain(report, tiny, 'tiny', fixtureLoras, 50, 256, true);
  await batchedOverSequential(report, tiny, 'tiny', fixtureLoras, 256);
  await tiny.close();
  loraSweep(report, 'tiny', join(dir, 'model'), 256);
}

async function realPart(report: Report): Promise<void> {
  const real = realModelPath();
  if (!real) {
    console.log('clora.real: skipped — write the SD 1.5-sized random model first: npm run random-model');
    return;
  }
  const engine = await Engine.load({ ...ENGINE, modelPath: real, cacheDir: CACHE });
  const randomLoras = writeRandomLoras(engine, loraCacheFor(real), 2);
  await ratioAgainstPlain(report, engine, 'real256', randomLoras, 10, 256, false);
  await batchedOverSequential(report, engine, 'real256', randomLoras, 256);
  await engine.close();
  loraSweep(report, 'real256', real, 256);
}

const args = process.argv.slice(2);
if (isEntryPoint(import.meta.url) && args[0] === '--sweep') {
  await sweepChild(args[1], Number(args[2]), Number(args[3]));
  process.exit(0);
}
