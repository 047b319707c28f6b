// npm run train-world: trains the world (engine/world/) with the engine's own autodiff —
// the VAE decoder on drawn scenes, then the UNet — and writes it as a diffusers folder,
// checkpointing as it goes. Seeded and resumable: every batch is a function of (seed,
// step), so stopping (Ctrl-C, `timeout`) and starting again continues the same run.
// Usage: npm run train-world -- [--out assets/world] [--seed 0] [--vae-steps 600]
//        [--unet-steps 20000] [--minutes 0] [--threads 2] [--checkpoint-every 50]

import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as G from '../graph/index.ts';
import { type ClipTextConfig, parseConfig, SD15_TEXT_ENCODER } from '../models/config.ts';
import { trainingSchedule } from '../schedulers/schedule.ts';
import { ClipTokenizer } from '../tokenizer/clip-tokenizer.ts';
import { AdamW } from '../training/adamw.ts';
import { TrainingStep } from '../training/step.ts';
import { TensorStore } from '../training/tensor-store.ts';
import { SD15_SCHEDULER_CONFIG } from '../weights/family.ts';
import { captionTokens } from '../world/captions.ts';
import {
  MODEL_DIR,
  TEXT_ENCODER_FILE,
  TRAINING_DIR,
  UNET_FILE,
  VAE_FILE,
  writeAtomically,
  writeModelConfigs,
} from '../world/files.ts';
import { objectFraction } from '../world/maps.ts';
import { initialUNet, initialVaeDecoder, WORLD_UNET, WORLD_VAE } from '../world/model.ts';
import { CaptionEncoder } from '../world/text.ts';
import { TOKENS, unetBatch, unetTrainingGraph, vaeBatch, vaeTrainingGraph } from '../world/training.ts';
import { defaultTokenizerDir } from './make-random-model.ts';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

/** Settings a run keeps for life: changing them would make a resumed run a different run. */
export const WORLD_RECIPE = {
  vae: { batch: 2, crop: 16, learningRate: 2e-3, warmup: 50, latentNoise: 0.1 },
  unet: {
    batch: 16,
    learningRate: 1e-3,
    warmup: 200,
    captionDropout: 0.1,
    placeWeight: 0.5,
    localisation: 0.5,
  },
} as const;

type Phase = 'vae' | 'unet';

interface Progress {
  seed: number;
  steps: Record<Phase, number>;
  /** [step, loss, …reports] every `logEvery` steps, for the loss curve */
  log: Record<Phase, number[][]>;
  seconds: Record<Phase, number>;
}

const LOG_EVERY = 10;

interface RunOptions {
  out: string;
  seed: number;
  targets: Record<Phase, number>;
  deadline: number;
  threads: number;
  checkpointEvery: number;
}

let stopRequested = false;

function learningRate(peak: number, warmup: number, step: number): number {
  return step < warmup ? (peak * (step + 1)) / warmup : peak;
}

function readProgress(path: string, seed: number): Progress {
  if (existsSync(path)) {
    const p = JSON.parse(readFileSync(path, 'utf8')) as Progress;
    if (p.seed !== seed)
      throw new Error(`${path} belongs to a run with seed ${p.seed}; give --seed ${p.seed} or another --out`);
    return p;
  }
  return { seed, steps: { vae: 0, unet: 0 }, log: { vae: [], unet: [] }, seconds: { vae: 0, unet: 0 } };
}

/** The network's parameters from the model folder if a run wrote them, else freshly initialised. */
function loadOrInit(path: string, init: () => TensorStore): TensorStore {
  return existsSync(path) ? TensorStore.read(path) : init();
}

function loadMoments(path: string): TensorStore {
  return existsSync(path) ? TensorStore.read(path, 'AdamW moments') : new TensorStore('AdamW moments');
}

async function trainPhase(
  phase: Phase,
  o: RunOptions,
  progress: Progress,
  params: TensorStore,
  weightsPath: string,
  compileStep: () => Promise<TrainingStep>,
  feedsFor: (step: number) => Promise<{
    feeds: Record<string, G.HostTensor>;
    after?: (r: Record<string, G.HostTensor>) => number[];
  }>,
  peak: number,
  warmup: number,
): Promise<boolean> {
  const dir = resolve(o.out);
  const momentsPath = join(dir, TRAINING_DIR, `${phase}.adamw.safetensors`);
  const progressPath = join(dir, TRAINING_DIR, 'progress.json');
  if (progress.steps[phase] >= o.targets[phase]) return true;
  const optimiser = new AdamW(params, loadMoments(momentsPath));
  optimiser.steps = progress.steps[phase];
  const step = await compileStep();
  const save = () => {
    writeAtomically(weightsPath, params.encode({ format: 'pt' }));
    writeAtomically(momentsPath, optimiser.moments.encode({ format: 'pt' }));
    writeAtomically(progressPath, `${JSON.stringify(progress)}\n`);
  };
  console.log(
    `${phase}: ${params.parameterCount()} parameters, from step ${progress.steps[phase]} to ${o.targets[phase]}`,
  );
  let window: number[][] = [];
  let t0 = performance.now();
  try {
    while (progress.steps[phase] < o.targets[phase]) {
      if (stopRequested || Date.now() > o.deadline) break;
      const at = progress.steps[phase];
      const { feeds, after } = await feedsFor(at);
      const result = await step.run(feeds, optimiser, learningRate(peak, warmup, at));
      progress.steps[phase] = at + 1;
      window.push([result.loss, ...(after?.(result.outputs) ?? [])]);
      if (progress.steps[phase] % LOG_EVERY === 0) {
        const seconds = (performance.now() - t0) / 1000;
        progress.seconds[phase] += seconds;
        const mean = window[0].map((_, k) => window.reduce((s, row) => s + row[k], 0) / window.length);
        progress.log[phase].push([progress.steps[phase], ...mean.map((v) => Number(v.toPrecision(5)))]);
        console.log(
          `${phase} step ${progress.steps[phase]}  ${mean.map((v) => v.toFixed(4)).join('  ')}  ${(window.length / seconds).toFixed(2)} steps/s`,
        );
        window = [];
        t0 = performance.now();
      }
      if (progress.steps[phase] % o.checkpointEvery === 0) save();
    }
  } finally {
    save();
    await step.release();
  }
  return progress.steps[phase] >= o.targets[phase];
}

export async function trainWorld(o: RunOptions): Promise<void> {
  const dir = resolve(o.out);
  const modelDir = join(dir, MODEL_DIR);
  const progress = readProgress(join(dir, TRAINING_DIR, 'progress.json'), o.seed);
  const fixtureModel = resolve(defaultTokenizerDir(), '..');
  const tokenizerDir = join(fixtureModel, 'tokenizer');
  writeModelConfigs(
    modelDir,
    WORLD_UNET,
    WORLD_VAE,
    join(fixtureModel, 'text_encoder', 'config.json'),
    tokenizerDir,
  );
  // The fixture's random text encoder, frozen, stored in half precision (it is the bulk of the files).
  const textPath = join(modelDir, TEXT_ENCODER_FILE);
  if (!existsSync(textPath)) {
    const fixture = TensorStore.read(join(fixtureModel, TEXT_ENCODER_FILE));
    writeAtomically(textPath, fixture.encode({ format: 'pt' }, { dtype: 'F16' }));
  }

  const vaePath = join(modelDir, VAE_FILE);
  const vae = loadOrInit(vaePath, () => initialVaeDecoder(WORLD_VAE, o.seed));
  const v = WORLD_RECIPE.vae;
  const vaeDone = await trainPhase(
    'vae',
    o,
    progress,
    vae,
    vaePath,
    () => {
      const { graph, loss } = vaeTrainingGraph(vae, WORLD_VAE, v.batch, v.crop);
      return TrainingStep.compile(graph, loss, vae, { intraOpThreads: o.threads });
    },
    async (step) => {
      const b = vaeBatch(o.seed, step, v.batch, v.crop, v.latentNoise);
      return {
        feeds: {
          latents: G.hostTensor('float32', b.latents, [v.batch, 4, v.crop, v.crop]),
          image: G.hostTensor('float32', b.images, [v.batch, 3, v.crop * 8, v.crop * 8]),
        },
      };
    },
    v.learningRate,
    v.warmup,
  );
  if (!vaeDone) return;

  const textConfig = parseConfig<ClipTextConfig>(
    SD15_TEXT_ENCODER,
    JSON.parse(readFileSync(join(modelDir, 'text_encoder', 'config.json'), 'utf8')),
  );
  const tokenizer = ClipTokenizer.fromDir(tokenizerDir);
  const encoder = await CaptionEncoder.open(TensorStore.read(textPath), textConfig, tokenizer);
  const alphas = trainingSchedule(SD15_SCHEDULER_CONFIG as never).alphasCumprod;
  const unetPath = join(modelDir, UNET_FILE);
  const unet = loadOrInit(unetPath, () => initialUNet(WORLD_UNET, o.seed));
  const u = WORLD_RECIPE.unet;
  const width = WORLD_UNET.cross_attention_dim;
  await trainPhase(
    'unet',
    o,
    progress,
    unet,
    unetPath,
    () => {
      const { graph, loss, report } = unetTrainingGraph(unet, WORLD_UNET, u.batch, u.localisation);
      return TrainingStep.compile(graph, loss, unet, { intraOpThreads: o.threads, report });
    },
    async (step) => {
      const b = unetBatch(o.seed, step, u, alphas, (scene) => captionTokens(tokenizer, scene));
      const context = new Float32Array(u.batch * TOKENS * width);
      for (const [i, s] of b.samples.entries())
        context.set(await encoder.encode(s.caption?.text ?? ''), i * TOKENS * width);
      const feeds: Record<string, G.HostTensor> = {
        noisy: G.hostTensor('float32', b.noisy, [u.batch, 4, 32, 32]),
        noise: G.hostTensor('float32', b.noise, [u.batch, 4, 32, 32]),
        timestep: G.hostTensor('float32', b.timesteps, [u.batch]),
        context: G.hostTensor('float32', context, [u.batch, TOKENS, width]),
      };
      for (const [k, grid] of [16, 8].entries())
        feeds[`attention.${grid}`] = G.hostTensor('float32', b.attentionWeights[k], [
          u.batch,
          grid * grid,
          TOKENS,
        ]);
      return {
        feeds,
        after: (out) => {
          const f = objectFraction(out.maps.data as Float32Array, b.samples, 8);
          return [
            (out.mse.data as Float32Array)[0],
            (out.localisation.data as Float32Array)[0],
            f.own,
            f.chance,
            f.versusOther,
          ];
        },
      };
    },
    u.learningRate,
    u.warmup,
  );
  await encoder.release();
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      out: { type: 'string', default: join(repoRoot, 'assets', 'world') },
      seed: { type: 'string', default: '0' },
      'vae-steps': { type: 'string', default: '600' },
      'unet-steps': { type: 'string', default: '20000' },
      minutes: { type: 'string', default: '0' },
      threads: { type: 'string', default: '2' },
      'checkpoint-every': { type: 'string', default: '50' },
    },
  });
  const whole = (name: string, v: string | undefined) => {
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < 0) throw new Error(`--${name} must be a whole number ≥ 0, got ${v}`);
    return n;
  };
  const minutes = Number(values.minutes);
  const options: RunOptions = {
    out: values.out as string,
    seed: whole('seed', values.seed),
    targets: {
      vae: whole('vae-steps', values['vae-steps']),
      unet: whole('unet-steps', values['unet-steps']),
    },
    deadline: minutes > 0 ? Date.now() + minutes * 60_000 : Number.POSITIVE_INFINITY,
    threads: whole('threads', values.threads),
    checkpointEvery: Math.max(1, whole('checkpoint-every', values['checkpoint-every'])),
  };
  // `timeout` and Ctrl-C stop after the current step, with a checkpoint.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (stopRequested) process.exit(130);
      stopRequested = true;
      console.log(`${signal}: stopping after this step and saving`);
    });
  }
  await trainWorld(options);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((e) => {
    console.error(e instanceof Error ? (e.stack ?? e.message) : e);
    process.exit(1);
  });
}
