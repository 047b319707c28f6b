// npm run train-world: trains the world (engine/world/) with the engine's own autodiff —
// the VAE decoder on drawn scenes, then the UNet, then the looks by name ("a pink cat"), then
// one LoRA per new look — and writes it as a diffusers folder and kohya LoRA files,
// checkpointing as it goes. Seeded and resumable: every batch is a function of (seed, phase,
// step), so stopping (Ctrl-C, `timeout`) and starting again continues the same run.
// Usage: npm run train-world -- [--out assets/world] [--seed 0] [--vae-steps 300]
//        [--unet-steps 10950] [--word-steps 6000] [--lora-steps 400] [--minutes 0] [--threads 1] [--checkpoint-every 50]

import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { type ClipTextConfig, parseConfig, SD15_TEXT_ENCODER } from '../engine/architecture.ts';
import * as G from '../engine/graph/index.ts';
import { trainingSchedule } from '../engine/schedulers/schedule.ts';
import { ClipTokenizer } from '../engine/tokenizer/clip-tokenizer.ts';
import { AdamW } from '../engine/training/adamw.ts';
import { TrainingStep } from '../engine/training/step.ts';
import { TensorStore } from '../engine/training/tensor-store.ts';
import { SD15_SCHEDULER_CONFIG } from '../engine/weights/family.ts';
import { captionTokens } from '../engine/world/captions.ts';
import {
  copyTextParts,
  hasTextParts,
  LORA_DIR,
  MODEL_DIR,
  TEXT_ENCODER_FILE,
  TRAINING_DIR,
  UNET_FILE,
  VAE_FILE,
  writeAtomically,
  writeModelConfigs,
} from '../engine/world/files.ts';
import {
  AttentionLoraSlots,
  initialFactors,
  kohyaLora,
  LORA_ALPHA,
  LORA_RANK,
  loraName,
} from '../engine/world/lora.ts';
import { objectFraction } from '../engine/world/maps.ts';
import { initialUNet, initialVaeDecoder, WORLD_UNET, WORLD_VAE } from '../engine/world/model.ts';
import { LATENT_CHANNELS } from '../engine/world/render.ts';
import { GRID, LORA_LOOKS, type Trigger } from '../engine/world/scene.ts';
import { CaptionEncoder } from '../engine/world/text.ts';
import {
  SUPERVISED_GRIDS,
  TOKENS,
  type UNetBatchSettings,
  unetBatch,
  unetTrainingGraph,
  vaeBatch,
  vaeTrainingGraph,
} from '../engine/world/training.ts';
import { defaultTokenizerDir } from './make-random-model.ts';

const repoRoot = fileURLToPath(new URL('..', import.meta.url));

/** Settings a run keeps for life: changing them would make a resumed run a different run. */
export const WORLD_RECIPE = {
  vae: { batch: 2, crop: 16, learningRate: 2e-3, warmup: 50, latentNoise: 0.1 },
  unet: {
    batch: 8,
    learningRate: 1e-3,
    warmup: 200,
    captionDropout: 0.1,
    placeWeight: 0.5,
    localisation: 0.5,
  },
  // The base learns the LoRAs' looks by name on every subject ("a pink cat"), as SD 1.5 knows colours.
  words: {
    batch: 8,
    learningRate: 1e-3,
    warmup: 100,
    captionDropout: 0.1,
    placeWeight: 0.5,
    localisation: 0.5,
    scenes: { wordShare: 0.35 },
  },
  // Users' LoRAs: no caption dropout, no masks, a higher rate on few parameters.
  lora: { batch: 8, learningRate: 2e-3, warmup: 20, captionDropout: 0, placeWeight: 0.5 },
} as const;

const TRIGGERS = Object.keys(LORA_LOOKS) as Trigger[];
/** The named-looks phase draws its own scenes, not the first phase's again. */
const WORDS_SEED = 500;
const LOG_EVERY = 10;

interface Progress {
  seed: number;
  /** optimiser steps taken, by phase ('vae', 'unet', 'lora-sks', …) */
  steps: Record<string, number>;
  /** [step, loss, …reports], means over LOG_EVERY steps: the loss curves */
  log: Record<string, number[][]>;
  seconds: Record<string, number>;
}

interface RunOptions {
  out: string;
  seed: number;
  targets: { vae: number; unet: number; words: number; lora: number };
  deadline: number;
  threads: number;
  checkpointEvery: number;
}

/** One phase of the run: what it trains, how its step is built and fed, where it saves. */
interface Phase {
  name: string;
  target: number;
  params: TensorStore;
  /** where the parameters are saved (and resumed from) */
  paramsPath: string;
  /** the graph to train: its loss and any figures to report (built only if the phase has steps left) */
  trainingGraph: () => { graph: G.Graph; loss: G.Tensor; report?: Record<string, G.Tensor> };
  batch: (step: number) => Promise<{
    feeds: Record<string, G.HostTensor>;
    /** more figures for the log, from the step's reports */
    report?: (outputs: Record<string, G.HostTensor>) => number[];
  }>;
  /** the recipe's peak learning rate and its warm-up steps */
  schedule: { learningRate: number; warmup: number };
  /** also written at every checkpoint */
  onSave?: () => void;
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
  return { seed, steps: {}, log: {}, seconds: {} };
}

/** Parameters from where a run saved them, else freshly initialised. */
function loadOrInit(path: string, init: () => TensorStore): TensorStore {
  return existsSync(path) ? TensorStore.read(path) : init();
}

/** Trains one phase up to its target or the deadline; true when the target is reached. */
async function train(phase: Phase, o: RunOptions, progress: Progress): Promise<boolean> {
  const dir = resolve(o.out);
  const momentsPath = join(dir, TRAINING_DIR, `${phase.name}.adamw.safetensors`);
  const progressPath = join(dir, TRAINING_DIR, 'progress.json');
  const name = phase.name;
  progress.steps[name] ??= 0;
  progress.log[name] ??= [];
  progress.seconds[name] ??= 0;
  if (progress.steps[name] >= phase.target) return true;
  if (stopRequested || Date.now() > o.deadline) return false;
  const moments = existsSync(momentsPath) ? TensorStore.read(momentsPath) : new TensorStore('AdamW moments');
  const optimiser = new AdamW(phase.params, moments);
  optimiser.steps = progress.steps[name];
  const { graph, loss, report } = phase.trainingGraph();
  const step = await TrainingStep.compile(graph, loss, phase.params, { intraOpThreads: o.threads, report });
  const save = () => {
    writeAtomically(phase.paramsPath, phase.params.encode({ format: 'pt' }));
    writeAtomically(momentsPath, optimiser.moments.encode({ format: 'pt' }));
    writeAtomically(progressPath, `${JSON.stringify(progress)}\n`);
    phase.onSave?.();
  };
  console.log(
    `${name}: ${phase.params.parameterCount()} parameters, step ${progress.steps[name]} of ${phase.target}`,
  );
  let window: number[][] = [];
  let t0 = performance.now();
  try {
    while (progress.steps[name] < phase.target && !stopRequested && Date.now() < o.deadline) {
      const at = progress.steps[name];
      const { feeds, report } = await phase.batch(at);
      const { learningRate: peak, warmup } = phase.schedule;
      const result = await step.run(feeds, optimiser, learningRate(peak, warmup, at));
      progress.steps[name] = at + 1;
      window.push([result.loss, ...(report?.(result.outputs) ?? [])]);
      if (progress.steps[name] % LOG_EVERY === 0) {
        const seconds = (performance.now() - t0) / 1000;
        progress.seconds[name] += seconds;
        const mean = window[0].map((_, k) => window.reduce((s, row) => s + row[k], 0) / window.length);
        progress.log[name].push([progress.steps[name], ...mean.map((v) => Number(v.toPrecision(5)))]);
        console.log(
          `${name} step ${progress.steps[name]}  ${mean.map((v) => v.toFixed(4)).join('  ')}  ${(window.length / seconds).toFixed(2)} steps/s`,
        );
        window = [];
        t0 = performance.now();
      }
      if (progress.steps[name] % o.checkpointEvery === 0) save();
    }
  } finally {
    save();
    await step.release();
  }
  return progress.steps[name] >= phase.target;
}

export async function trainWorld(o: RunOptions): Promise<void> {
  const dir = resolve(o.out);
  const modelDir = join(dir, MODEL_DIR);
  const progress = readProgress(join(dir, TRAINING_DIR, 'progress.json'), o.seed);
  writeModelConfigs(modelDir, WORLD_UNET, WORLD_VAE);
  // The tiny fixture's random text encoder, frozen, and the CLIP tokenizer: copied once, then the folder's own.
  if (!hasTextParts(modelDir)) copyTextParts(modelDir, resolve(defaultTokenizerDir(), '..'));
  const tokenizerDir = join(modelDir, 'tokenizer');
  const textPath = join(modelDir, TEXT_ENCODER_FILE);
  // Both networks are on disk from the start, so the folder opens as a model at any point of the run.
  const unetPath = join(modelDir, UNET_FILE);
  const unet = loadOrInit(unetPath, () => initialUNet(WORLD_UNET, o.seed));
  if (!existsSync(unetPath)) writeAtomically(unetPath, unet.encode({ format: 'pt' }));
  const vaePath = join(modelDir, VAE_FILE);
  const vae = loadOrInit(vaePath, () => initialVaeDecoder(WORLD_VAE, o.seed));
  if (!existsSync(vaePath)) writeAtomically(vaePath, vae.encode({ format: 'pt' }));

  const v = WORLD_RECIPE.vae;
  const vaeDone = await train(
    {
      name: 'vae',
      target: o.targets.vae,
      params: vae,
      paramsPath: vaePath,
      trainingGraph: () => vaeTrainingGraph(vae, WORLD_VAE, v.batch, v.crop),
      batch: async (step) => {
        const b = vaeBatch(o.seed, step, v.batch, v.crop, v.latentNoise);
        return {
          feeds: {
            latents: G.hostTensor('float32', b.latents, [v.batch, LATENT_CHANNELS, v.crop, v.crop]),
            image: G.hostTensor('float32', b.images, [v.batch, 3, v.crop * 8, v.crop * 8]),
          },
        };
      },
      schedule: v,
    },
    o,
    progress,
  );
  if (!vaeDone) return;

  const textConfig = parseConfig<ClipTextConfig>(
    SD15_TEXT_ENCODER,
    JSON.parse(readFileSync(join(modelDir, 'text_encoder', 'config.json'), 'utf8')),
  );
  const tokenizer = ClipTokenizer.fromDir(tokenizerDir);
  const encoder = await CaptionEncoder.open(TensorStore.read(textPath), textConfig, tokenizer);
  const alphas = trainingSchedule(SD15_SCHEDULER_CONFIG as never).alphasCumprod;
  const width = WORLD_UNET.cross_attention_dim;

  /** A UNet batch's feeds (the LoRA gates too, when `gates` names them). */
  const unetFeeds = async (seed: number, step: number, settings: UNetBatchSettings, gates: string[] = []) => {
    const B = settings.batch;
    const b = unetBatch(seed, step, settings, alphas, (scene) => captionTokens(tokenizer, scene));
    const context = new Float32Array(B * TOKENS * width);
    for (const [i, s] of b.samples.entries())
      context.set(await encoder.encode(s.caption?.text ?? ''), i * TOKENS * width);
    const feeds: Record<string, G.HostTensor> = {
      noisy: G.hostTensor('float32', b.noisy, [B, LATENT_CHANNELS, GRID, GRID]),
      noise: G.hostTensor('float32', b.noise, [B, LATENT_CHANNELS, GRID, GRID]),
      timestep: G.hostTensor('float32', b.timesteps, [B]),
      context: G.hostTensor('float32', context, [B, TOKENS, width]),
    };
    SUPERVISED_GRIDS.forEach((grid, k) => {
      feeds[`attention.${grid}`] = G.hostTensor('float32', b.attentionWeights[k], [B, grid * grid, TOKENS]);
    });
    const scale = new Float32Array(B * LORA_RANK).fill(LORA_ALPHA / LORA_RANK);
    for (const gate of gates) feeds[gate] = G.hostTensor('float32', scale, [B, LORA_RANK]);
    const report = (out: Record<string, G.HostTensor>) => {
      const f = objectFraction(out.maps.data as Float32Array, b.samples, SUPERVISED_GRIDS[1]);
      const scalar = (name: string) => (out[name].data as Float32Array)[0];
      return [scalar('mse'), scalar('localisation'), f.own, f.chance, f.versusOther];
    };
    return { feeds, report };
  };

  const u = WORLD_RECIPE.unet;
  const unetDone = await train(
    {
      name: 'unet',
      target: o.targets.unet,
      params: unet,
      paramsPath: unetPath,
      trainingGraph: () => unetTrainingGraph(unet, WORLD_UNET, u.batch, u.localisation),
      batch: (step) => unetFeeds(o.seed, step, u),
      schedule: u,
    },
    o,
    progress,
  );

  const w = WORLD_RECIPE.words;
  const wordsDone =
    unetDone &&
    (await train(
      {
        name: 'unet-words',
        target: o.targets.words,
        params: unet,
        paramsPath: unetPath,
        trainingGraph: () => unetTrainingGraph(unet, WORLD_UNET, w.batch, w.localisation),
        batch: (step) => unetFeeds(o.seed + WORDS_SEED, step, w),
        schedule: w,
      },
      o,
      progress,
    ));

  const l = WORLD_RECIPE.lora;
  for (const [k, trigger] of TRIGGERS.entries()) {
    if (!wordsDone) break;
    const { subject } = LORA_LOOKS[trigger];
    const slots = new AttentionLoraSlots();
    const loraGraph = unetTrainingGraph(unet, WORLD_UNET, l.batch, 0, slots, () => false);
    const name = `lora-${trigger}`;
    const factorsPath = join(dir, TRAINING_DIR, `${name}.factors.safetensors`);
    const factors = loadOrInit(factorsPath, () => initialFactors(slots, o.seed * 10 + k + 1));
    const gates = [...slots.slots.values()].map((s) => s.inputs.gate);
    const settings = { ...l, scenes: { subjects: [subject], triggers: { [subject]: trigger } } };
    const done = await train(
      {
        name,
        target: o.targets.lora,
        params: factors,
        paramsPath: factorsPath,
        trainingGraph: () => loraGraph,
        batch: (step) => unetFeeds(o.seed + 1000 * (k + 1), step, settings, gates),
        schedule: l,
        onSave: () =>
          writeAtomically(
            join(dir, LORA_DIR, `${loraName(trigger)}.safetensors`),
            kohyaLora(slots, factors, trigger, progress.steps[name]),
          ),
      },
      o,
      progress,
    );
    if (!done) break;
  }
  await encoder.release();
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      out: { type: 'string', default: join(repoRoot, 'assets', 'world') },
      seed: { type: 'string', default: '0' },
      'vae-steps': { type: 'string', default: '300' },
      'unet-steps': { type: 'string', default: '10950' },
      'word-steps': { type: 'string', default: '6000' },
      'lora-steps': { type: 'string', default: '400' },
      minutes: { type: 'string', default: '0' },
      // One intra-op thread: on a shared machine a second one mostly waits for the first.
      threads: { type: 'string', default: '1' },
      'checkpoint-every': { type: 'string', default: '50' },
    },
  });
  const whole = (name: string, v: string | undefined) => {
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < 0) throw new Error(`--${name} must be a whole number ≥ 0, got ${v}`);
    return n;
  };
  const minutes = Number(values.minutes);
  if (!(minutes >= 0)) throw new Error(`--minutes must be a number ≥ 0 (0: no limit), got ${values.minutes}`);
  const options: RunOptions = {
    out: values.out as string,
    seed: whole('seed', values.seed),
    targets: {
      vae: whole('vae-steps', values['vae-steps']),
      unet: whole('unet-steps', values['unet-steps']),
      words: whole('word-steps', values['word-steps']),
      lora: whole('lora-steps', values['lora-steps']),
    },
    deadline: minutes > 0 ? Date.now() + minutes * 60_000 : Number.POSITIVE_INFINITY,
    threads: whole('threads', values.threads),
    checkpointEvery: Math.max(1, whole('checkpoint-every', values['checkpoint-every'])),
  };
  // `timeout` and Ctrl-C stop after the current step, with a checkpoint; a second signal stops at once.
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
