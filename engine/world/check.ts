// The check that comes before anything is built on the world: sample pictures from the
// model with plain classifier-free guidance, read them back with the detector, and measure
// where each subject token's cross-attention (CLoRA's aggregate maps) sits — on its own
// subject, as CLoRA's loss and masks need, or spread at chance.

import { compileDenoiseUNet } from '../clora/graphs.ts';
import * as G from '../graph/index.ts';
import { compileTextEncoder, compileVaeDecoder } from '../models/compiled.ts';
import { createScheduler } from '../schedulers/index.ts';
import { gaussianNoise } from '../schedulers/noise.ts';
import { ClipTokenizer } from '../tokenizer/clip-tokenizer.ts';
import { findPhrase } from '../tokenizer/phrase.ts';
import type { Checkpoint } from '../weights/checkpoint.ts';
import { type Detection, detectSubjects } from './detector.ts';
import { WORLD_SAMPLING } from './model.ts';
import { PLACE_PHRASE, type Place, type Subject } from './scene.ts';

export interface WorldPrompt {
  subjects: Subject[];
  place: Place;
}

export function promptText(p: WorldPrompt): string {
  return `${p.subjects.map((s) => `a ${s}`).join(' and ')} ${PLACE_PHRASE[p.place]}`;
}

export interface SampleResult {
  prompt: WorldPrompt;
  seed: number;
  image: Float32Array;
  detections: Detection[];
  /** per subject, its tokens' aggregate map (8×8 for a 32×32 latent) averaged over the sampled steps */
  maps: Float32Array[];
}

export interface CheckFigures {
  images: number;
  /** share of images in which every prompted subject was found (by shape) */
  allPresent: number;
  /** share of (image, subject) pairs found, whose map's peak lies inside the found subject */
  peakInside: number;
  /** mean share of a found subject's map mass on its region (8×8 cells), and a flat map's */
  massOnSubject: number;
  chance: number;
}

/** Samples `prompt` at `seed` (DDIM, `steps` steps, CFG `cfg`) and keeps the subject tokens' maps. */
export class WorldSampler {
  private constructor(
    private readonly nets: { text: G.CompiledModel; unet: G.CompiledModel; vae: G.CompiledModel },
    private readonly tokenizer: ClipTokenizer,
    private readonly ck: Checkpoint,
  ) {}

  static async open(ck: Checkpoint, threads = 1): Promise<WorldSampler> {
    const o = { intraOpThreads: threads };
    const [text, unet, vae] = await Promise.all([
      compileTextEncoder(ck, o),
      compileDenoiseUNet(ck, o),
      compileVaeDecoder(ck, o),
    ]);
    return new WorldSampler(
      { text: text.model, unet: unet.model, vae: vae.model },
      ClipTokenizer.fromDir(ck.tokenizerDir),
      ck,
    );
  }

  private async encode(texts: string[]): Promise<Float32Array> {
    const ids = texts.flatMap((t) => this.tokenizer.encode(t).ids);
    const out = await this.nets.text.run({
      input_ids: G.hostTensor('int64', BigInt64Array.from(ids.map(BigInt)), [texts.length, 77]),
    });
    return out.hidden.data as Float32Array;
  }

  async sample(
    prompt: WorldPrompt,
    seed: number,
    steps: number = WORLD_SAMPLING.steps,
    cfg: number = WORLD_SAMPLING.cfg,
  ): Promise<SampleResult> {
    const text = promptText(prompt);
    const tokenized = this.tokenizer.encode(text);
    const positions = prompt.subjects.map((s) => findPhrase(tokenized, s)[0] ?? []);
    const context = await this.encode(['', text]);
    const side = this.ck.unet.config.sample_size;
    const channels = this.ck.unet.config.in_channels;
    const size = channels * side * side;
    const scheduler = createScheduler(WORLD_SAMPLING.sampler, this.ck.schedulerConfig);
    scheduler.setTimesteps(steps);
    let x: Float32Array = gaussianNoise(seed, size, 0).map((v) => v * scheduler.initNoiseSigma);
    const res = side / 4;
    const cells = res * res;
    const maps = prompt.subjects.map(() => new Float32Array(cells));
    for (const [i, t] of scheduler.timesteps.entries()) {
      const input = scheduler.scaleModelInput(x, t);
      const batch = new Float32Array(2 * size);
      batch.set(input, 0);
      batch.set(input, size);
      const out = await this.nets.unet.run({
        sample: G.hostTensor('float32', batch, [2, channels, side, side]),
        timestep: G.hostTensor('float32', Float32Array.of(t, t), [2]),
        context: G.hostTensor('float32', context, [2, 77, context.length / (2 * 77)]),
      });
      const noise = out.noise.data as Float32Array;
      const eps = new Float32Array(size);
      for (let k = 0; k < size; k++) eps[k] = noise[k] + cfg * (noise[size + k] - noise[k]);
      // The conditional half's maps over the first half of the steps, where CLoRA reads them.
      if (i < steps / 2) {
        const m = out.maps.data as Float32Array;
        positions.forEach((tokens, s) => {
          for (let p = 0; p < cells; p++)
            for (const tok of tokens) maps[s][p] += m[(cells + p) * 77 + tok] / tokens.length;
        });
      }
      x = scheduler.step(eps, t, x);
    }
    const decoded = await this.nets.vae.run({
      latents: G.hostTensor('float32', x, [1, channels, side, side]),
    });
    const image = (decoded.image.data as Float32Array).slice();
    const px = side * 8;
    return { prompt, seed, image, detections: detectSubjects(image, px, px), maps };
  }

  async release(): Promise<void> {
    await Promise.all([this.nets.text.release(), this.nets.unet.release(), this.nets.vae.release()]);
  }
}

/** The figures of a set of samples: presence, map peaks inside their subject, mass on it. */
export function checkFigures(samples: readonly SampleResult[]): CheckFigures {
  let allPresent = 0;
  let pairs = 0;
  let inside = 0;
  let mass = 0;
  let chance = 0;
  for (const s of samples) {
    const side = Math.round(Math.sqrt(s.image.length / 3));
    const res = Math.round(Math.sqrt(s.maps[0]?.length ?? 0));
    const found = s.prompt.subjects.map((subject) => s.detections.find((d) => d.subject === subject));
    if (found.every(Boolean)) allPresent++;
    found.forEach((d, i) => {
      if (!d) return;
      pairs++;
      const map = s.maps[i];
      const cover = coverageOnGrid(d.mask, side, res);
      let peak = 0;
      for (let p = 1; p < map.length; p++) if (map[p] > map[peak]) peak = p;
      if (cover[peak] >= 0.5) inside++;
      const total = map.reduce((a, v) => a + v, 0);
      mass += total > 0 ? map.reduce((a, v, p) => a + v * cover[p], 0) / total : 0;
      chance += cover.reduce((a, v) => a + v, 0) / cover.length;
    });
  }
  return {
    images: samples.length,
    allPresent: samples.length ? allPresent / samples.length : 0,
    peakInside: pairs ? inside / pairs : 0,
    massOnSubject: pairs ? mass / pairs : 0,
    chance: pairs ? chance / pairs : 0,
  };
}

/** Share of each cell of a res×res grid covered by a side×side mask. */
function coverageOnGrid(mask: Uint8Array, side: number, res: number): Float32Array {
  const out = new Float32Array(res * res);
  const cell = side / res;
  for (let y = 0; y < side; y++)
    for (let x = 0; x < side; x++)
      if (mask[y * side + x]) out[Math.floor(y / cell) * res + Math.floor(x / cell)] += 1 / (cell * cell);
  return out;
}
