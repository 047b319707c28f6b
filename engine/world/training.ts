// What one training step of the world sees: batches drawn from (run seed, step) so a
// resumed run replays exactly, and the graphs that turn them into a loss.
//
// The UNet learns epsilon prediction on the drawn latents with SD 1.5's noise schedule and
// caption dropout (for classifier-free guidance), plus a localisation term on its
// cross-attention (FastComposer's, Xiao et al. 2023): each subject's tokens should hold
// their probability on that subject's pixels and little elsewhere, and the place's noun on
// the background. CLoRA's contrastive loss and masks read nothing but these maps.

import type { UNetConfig, VaeConfig } from '../architecture.ts';
import type { Tensor } from '../graph/index.ts';
import * as G from '../graph/index.ts';
import type { ModelContext } from '../models/layers.ts';
import { buildUNet } from '../models/unet.ts';
import { buildVaeDecoder } from '../models/vae.ts';
import { gaussianNoise } from '../schedulers/noise.ts';
import type { WeightSet } from '../weights/checkpoint.ts';
import type { CaptionTokens } from './captions.ts';
import { LATENT_CHANNELS, sceneImage, sceneLatent, subjectCoverage } from './render.ts';
import { drawScene, GRID, type Scene, type SceneOptions, sceneRandom } from './scene.ts';

export const TOKENS = 77;

/** Grids whose cross-attention the localisation term supervises: a half and a quarter of the latent. */
export const SUPERVISED_GRIDS = [GRID / 2, GRID / 4] as const;

export interface UNetBatchSettings {
  batch: number;
  /** share of captions replaced by the empty prompt */
  captionDropout: number;
  /** weight of the place noun's term against a subject's */
  placeWeight: number;
  /** scenes drawn for each sample (default: the world's mix) */
  scenes?: SceneOptions;
}

export interface UNetSample {
  scene: Scene;
  /** undefined when the caption was dropped */
  caption?: CaptionTokens;
  timestep: number;
}

export interface UNetBatch {
  samples: UNetSample[];
  /** x_t = √ᾱ_t x₀ + √(1−ᾱ_t) ε */
  noisy: Float32Array;
  noise: Float32Array;
  timesteps: Float32Array;
  /** per supervised grid, [B, grid², 77]: the localisation term is Σ weights ⊙ maps */
  attentionWeights: Float32Array[];
}

/** A sample's seed from the run seed, the step and its place in the batch. */
export function sampleSeed(runSeed: number, step: number, index: number): number {
  return (
    (Math.imul(runSeed + 1, 0x2c1b3c6d) ^ Math.imul(step, 0x297a2d39) ^ Math.imul(index + 1, 0x5bd1e995)) >>>
    0
  );
}

export function unetBatch(
  runSeed: number,
  step: number,
  settings: UNetBatchSettings,
  alphasCumprod: Float32Array,
  tokens: (scene: Scene) => CaptionTokens,
): UNetBatch {
  const B = settings.batch;
  const size = LATENT_CHANNELS * GRID * GRID;
  const noisy = new Float32Array(B * size);
  const noise = new Float32Array(B * size);
  const timesteps = new Float32Array(B);
  const attentionWeights = SUPERVISED_GRIDS.map((g) => new Float32Array(B * g * g * TOKENS));
  const samples: UNetSample[] = [];
  for (let b = 0; b < B; b++) {
    const seed = sampleSeed(runSeed, step, b);
    const random = sceneRandom(seed ^ 0x5eed);
    const scene = drawScene(seed, settings.scenes);
    const timestep = Math.min(alphasCumprod.length - 1, Math.floor(random() * alphasCumprod.length));
    const caption = random() < settings.captionDropout ? undefined : tokens(scene);
    const x0 = sceneLatent(scene);
    const eps = gaussianNoise(seed, size, 1);
    const a = Math.sqrt(alphasCumprod[timestep]);
    const s = Math.sqrt(1 - alphasCumprod[timestep]);
    for (let i = 0; i < size; i++) {
      noisy[b * size + i] = a * x0[i] + s * eps[i];
      noise[b * size + i] = eps[i];
    }
    timesteps[b] = timestep;
    if (caption) {
      SUPERVISED_GRIDS.forEach((grid, k) => {
        localisationWeights(scene, caption, grid, settings.placeWeight, attentionWeights[k], b, B);
      });
    }
    samples.push({ scene, caption, timestep });
  }
  return { samples, noisy, noise, timesteps, attentionWeights };
}

/**
 * Writes sample b's weights W so that Σ W ⊙ A over pixels and tokens is, per supervised
 * token, mean(A off its region) − mean(A on its region), averaged over tokens and the batch.
 */
function localisationWeights(
  scene: Scene,
  caption: CaptionTokens,
  grid: number,
  placeWeight: number,
  out: Float32Array,
  b: number,
  batch: number,
): void {
  const cells = grid * grid;
  const cover = subjectCoverage(scene, grid);
  const background = new Float32Array(cells).map((_, p) =>
    Math.max(0, 1 - cover.reduce((s, c) => s + c[p], 0)),
  );
  const regions: { positions: number[]; mask: Float32Array; weight: number }[] = [
    ...caption.subjects.map((positions, i) => ({ positions, mask: cover[i], weight: 1 })),
    { positions: caption.place, mask: background, weight: placeWeight },
  ];
  const terms: { position: number; mask: Float32Array; weight: number; on: number; off: number }[] = [];
  for (const r of regions) {
    const on = r.mask.reduce((s, v) => s + v, 0);
    const off = cells - on;
    if (on < 0.5 || off < 0.5) continue; // too small (or everything) at this grid to say anything
    for (const position of r.positions) terms.push({ position, mask: r.mask, weight: r.weight, on, off });
  }
  const total = terms.reduce((s, t) => s + t.weight, 0);
  for (const t of terms) {
    const w = t.weight / total / batch;
    for (let p = 0; p < cells; p++) {
      out[(b * cells + p) * TOKENS + t.position] += w * ((1 - t.mask[p]) / t.off - t.mask[p] / t.on);
    }
  }
}

export interface UNetTrainingGraph {
  graph: G.Graph;
  loss: Tensor;
  report: Record<string, Tensor>;
}

/** Inputs: noisy, timestep, context, noise, attention.<grid>; loss = MSE(ε̂, ε) + λ·localisation. */
export function unetTrainingGraph(
  weights: WeightSet,
  config: UNetConfig,
  batch: number,
  localisation: number,
  lora?: ModelContext['lora'],
  trainable: (name: string) => boolean = () => true,
): UNetTrainingGraph {
  const g = new G.Graph('world_unet_training');
  const ctx: ModelContext = { graph: g, weights, dtype: 'float32', namespace: '', trainable, lora };
  const sample = g.input('noisy', 'float32', [batch, LATENT_CHANNELS, GRID, GRID]);
  const timestep = g.input('timestep', 'float32', [batch]);
  const context = g.input('context', 'float32', [batch, TOKENS, config.cross_attention_dim]);
  const noise = g.input('noise', 'float32', [batch, LATENT_CHANNELS, GRID, GRID]);
  const { noise: predicted, attention } = buildUNet(
    ctx,
    config,
    { sample, timestep, context },
    { captureAttention: 'all' },
  );
  const diff = G.sub(predicted, noise);
  const mse = G.reduceMean(G.mul(diff, diff));
  const report: Record<string, Tensor> = { mse };
  let loss = mse;
  const terms: Tensor[] = [];
  SUPERVISED_GRIDS.forEach((grid) => {
    const weightsIn = g.input(`attention.${grid}`, 'float32', [batch, grid * grid, TOKENS]);
    const layers = [...attention.values()].filter((t) => t.shape[1] === grid * grid);
    const mean = G.mul(
      layers.reduce((a, t) => G.add(a, t)),
      1 / layers.length,
    );
    terms.push(G.reduceSum(G.mul(mean, weightsIn)));
    if (grid === GRID / 4) report.maps = mean; // CLoRA's aggregate: [B, 64, 77]
  });
  const localised = G.mul(
    terms.reduce((a, t) => G.add(a, t)),
    1 / terms.length,
  );
  report.localisation = localised;
  if (localisation > 0) loss = G.add(loss, G.mul(localised, localisation));
  return { graph: g, loss, report };
}

export interface VaeBatch {
  latents: Float32Array;
  images: Float32Array;
}

/** Crops of drawn scenes: latent windows of `crop` cells (with a little noise, as a UNet leaves) and their pixels. */
export function vaeBatch(
  runSeed: number,
  step: number,
  batch: number,
  crop: number,
  latentNoise: number,
): VaeBatch {
  const side = crop * 8;
  const latents = new Float32Array(batch * LATENT_CHANNELS * crop * crop);
  const images = new Float32Array(batch * 3 * side * side);
  for (let b = 0; b < batch; b++) {
    const seed = sampleSeed(runSeed ^ 0x7ae, step, b);
    const random = sceneRandom(seed ^ 0xc0de);
    const scene = drawScene(seed, pickTriggers(random));
    const z = sceneLatent(scene);
    const image = sceneImage(scene);
    const x0 = Math.floor(random() * (GRID - crop + 1));
    const y0 = Math.floor(random() * (GRID - crop + 1));
    const jitter = gaussianNoise(seed, LATENT_CHANNELS * crop * crop, 2);
    for (let c = 0; c < LATENT_CHANNELS; c++)
      for (let y = 0; y < crop; y++)
        for (let x = 0; x < crop; x++) {
          const at = ((b * LATENT_CHANNELS + c) * crop + y) * crop + x;
          latents[at] =
            z[(c * GRID + y0 + y) * GRID + x0 + x] + latentNoise * jitter[(c * crop + y) * crop + x];
        }
    for (let c = 0; c < 3; c++)
      for (let y = 0; y < side; y++)
        for (let x = 0; x < side; x++)
          images[((b * 3 + c) * side + y) * side + x] =
            image[(c * GRID * 8 + y0 * 8 + y) * GRID * 8 + x0 * 8 + x];
  }
  return { latents, images };
}

/** The decoder must paint every look, the LoRAs' too: a third of its scenes wear them. */
function pickTriggers(random: () => number): SceneOptions {
  const r = random();
  if (r < 0.17) return { triggers: { cat: 'sks' } };
  if (r < 0.33) return { triggers: { penguin: 'ohwx' } };
  return {};
}

/** Inputs: latents [B,4,crop,crop] (already scaled as the UNet's), image; loss = MSE. */
export function vaeTrainingGraph(weights: WeightSet, config: VaeConfig, batch: number, crop: number) {
  const g = new G.Graph('world_vae_training');
  const ctx: ModelContext = { graph: g, weights, dtype: 'float32', namespace: '', trainable: () => true };
  const latents = g.input('latents', 'float32', [batch, LATENT_CHANNELS, crop, crop]);
  const image = g.input('image', 'float32', [batch, 3, crop * 8, crop * 8]);
  const diff = G.sub(buildVaeDecoder(ctx, config, latents), image);
  const loss = G.reduceMean(G.mul(diff, diff));
  return { graph: g, loss };
}
