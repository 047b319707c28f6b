// How much memory a composition's UNet batches take, and how to split them to fit a budget
// (DESIGN.md decision 3): the denoise batch of N+1 branches × (uncond, cond) runs in chunks of
// pairs, the guidance batch of N+1 branches in chunks of branches, each chunk after the other.
//
// The estimate is a model, not a measurement. Per sample at a latent of h × w cells (T = h·w
// query tokens at the UNet's first level, c0 its channels, B bytes per element):
//
//   forward  = 2 · heads · T · min(T, q) · B     scores and probabilities of the widest
//                                                self-attention, alive together
//            + κf · c0 · T · B                   feature maps, skips and matmul buffers
//   guidance = Σ over the self-attention layers up to the last map layer of
//              heads · Tℓ · min(Tℓ, q) · B       probabilities the VJP keeps (none when the
//                                                attention op recomputes them)
//            + κg · c0 · T · B                   activations kept for the VJP and its buffers
//
// and a run's peak is weights (counted once) + the larger of pairs · 2 · forward and branches ·
// guidance: the denoising, guidance and maps-VJP graphs share one session and one copy of the
// weights (compileCLoraUNet), run one after another, and with onnxruntime's arena off and the
// engine's malloc settings (engine/allocator.ts) what one run frees goes back to the system
// before the next. q is the attention's query chunk (T when it materialises QKᵀ).
//
// Calibrated on SD 1.5 at 512² (64×64 latent), fp32, CPU, chunked attention (`npm run bench --
// native`, 2026-12-03): plain generation of batch 2 peaked at 4.63 GiB, so with 3.97 GiB of
// weights one sample's forward is 0.33 GiB, 0.06 GiB of it one attention chunk: κf = 55. One
// CLoRA step with 2 LoRAs (guidance batch 3, denoise batch 6) peaked at 6.28 GiB: 0.77 GiB per
// guided sample if the guided pass set the peak (the most it can be), κg = 158. The VAE
// decoder and text encoder are not modelled beyond their weights.

import { execFileSync } from 'node:child_process';
import { totalmem } from 'node:os';
import type { UNetConfig } from '../architecture.ts';
import type { WeightSet } from '../weights/weight-set.ts';
import { SpecError } from './spec.ts';

const GiB = 1024 ** 3;

/** κf and κg above: feature-map multiples of a forward sample and of a guided sample. */
export const CALIBRATION = Object.freeze({ forwardFeatures: 55, guidanceFeatures: 158 });

/** How the engine's attention spends memory (today: whole QKᵀ, probabilities kept for the VJP). */
export interface AttentionMemory {
  /** queries per chunk; undefined: all of them at once */
  queryChunk?: number;
  /** the VJP keeps every layer's probabilities (false when it recomputes them from Q, K) */
  keepsProbabilities: boolean;
  /** memory one query chunk's scores and probabilities take per sample (the chunked kernel's budget) */
  chunkBytesPerSample?: number;
}

export const MATERIALISED_ATTENTION: AttentionMemory = Object.freeze({ keepsProbabilities: true });

/** The chunked and fused kernels: one chunk's scores and probabilities at a time, recomputed in the VJP. */
export function chunkedAttentionMemory(chunkBytesPerSample: number): AttentionMemory {
  return { keepsProbabilities: false, chunkBytesPerSample };
}

export interface UNetMemoryModel {
  /** bytes of every weight the engine holds (UNet, text encoder, VAE), counted once */
  weightBytes: number;
  unet: Pick<UNetConfig, 'block_out_channels' | 'down_block_types' | 'up_block_types' | 'attention_head_dim'>;
  /** bytes per activation element: 4 for float32, 2 for float16 */
  elementBytes: number;
  attention: AttentionMemory;
}

/** Bytes of all the weights of some weight sets, at `elementBytes` each. */
export function weightBytes(sets: readonly WeightSet[], elementBytes: number): number {
  let elements = 0;
  for (const set of sets)
    for (const name of set.names()) elements += set.shape(name).reduce((a, b) => a * b, 1);
  return elements * elementBytes;
}

function heads(unet: UNetMemoryModel['unet'], level: number): number {
  const h = unet.attention_head_dim;
  return Array.isArray(h) ? h[level] : h;
}

/** Bytes one attention layer holds for its probabilities over T queries and T keys. */
function probabilityBytes(m: UNetMemoryModel, tokens: number, level: number): number {
  const whole =
    heads(m.unet, level) * tokens * Math.min(tokens, m.attention.queryChunk ?? tokens) * m.elementBytes;
  const chunk = m.attention.chunkBytesPerSample;
  // scores and probabilities of a chunk share the chunk budget at every size up to the
  // reference, where the chunk count is chosen (queryChunkingFor)
  return chunk === undefined ? whole : Math.min(whole, chunk / 2);
}

/** Peak bytes of one sample of a forward UNet pass (the denoise batch) at h × w latent cells. */
export function forwardBytesPerSample(m: UNetMemoryModel, h: number, w: number): number {
  const tokens = h * w;
  const features = CALIBRATION.forwardFeatures * m.unet.block_out_channels[0] * tokens * m.elementBytes;
  return 2 * probabilityBytes(m, tokens, 0) + features;
}

/**
 * Peak bytes of one sample of a guided pass (forward up to the last quarter-size map layer and
 * its VJP): the self-attention probabilities it keeps, level by level, and its activations.
 */
export function guidanceBytesPerSample(m: UNetMemoryModel, h: number, w: number): number {
  const levels = m.unet.block_out_channels.length;
  const mapLevel = 2; // latent / 4: the layers CLoRA reads
  let kept = 0;
  if (m.attention.keepsProbabilities) {
    m.unet.down_block_types.forEach((type, level) => {
      if (type.startsWith('CrossAttn')) kept += 2 * probabilityBytes(m, (h * w) / 4 ** level, level);
    });
    kept += probabilityBytes(m, (h * w) / 4 ** (levels - 1), levels - 1); // mid block
    m.unet.up_block_types.forEach((type, i) => {
      const level = levels - 1 - i;
      if (type.startsWith('CrossAttn') && level >= mapLevel)
        kept += 3 * probabilityBytes(m, (h * w) / 4 ** level, level);
    });
  }
  const features = CALIBRATION.guidanceFeatures * m.unet.block_out_channels[0] * h * w * m.elementBytes;
  return kept + features;
}

/** How a composition's batches run: how many (uncond, cond) pairs and guided branches a call takes. */
export interface BatchPlan {
  denoisePairs: number;
  guidanceBranches: number;
  /** the model's peak for this plan, bytes */
  peakBytes: number;
}

export class MemoryBudgetError extends SpecError {
  override name = 'SpecError';
}

const gib = (bytes: number) => `${(bytes / GiB).toFixed(1)} GiB`;

/**
 * The largest chunks that fit `budgetBytes`: as many (uncond, cond) pairs per denoising run and
 * as many branches per guided run as fit beside the weights (the two runs take turns). A job
 * that does not fit one branch at a time is refused before any compute.
 * @param published the published mode's guidance pass: every branch's both halves in one run
 */
export function planBatches(
  m: UNetMemoryModel,
  job: { branches: number; latentHeight: number; latentWidth: number; guided: boolean; published?: boolean },
  budgetBytes: number,
): BatchPlan {
  const n = job.branches;
  const pair = 2 * forwardBytesPerSample(m, job.latentHeight, job.latentWidth);
  const guided = job.guided
    ? job.published
      ? 2 * forwardBytesPerSample(m, job.latentHeight, job.latentWidth) +
        guidanceBytesPerSample(m, job.latentHeight, job.latentWidth)
      : guidanceBytesPerSample(m, job.latentHeight, job.latentWidth)
    : 0;
  const peak = (pairs: number, branches: number) => m.weightBytes + Math.max(pairs * pair, branches * guided);
  const size = `${job.latentWidth * 8}×${job.latentHeight * 8}`;
  const smallest = job.published ? peak(1, n) : peak(1, job.guided ? 1 : 0);
  if (smallest > budgetBytes) {
    const what = job.published
      ? `the published mode's guidance runs all ${n} branches at once and needs about ${gib(smallest)}`
      : `even one branch at a time needs about ${gib(smallest)}`;
    throw new MemoryBudgetError(
      `a ${size} picture with ${n - 1} LoRA${n === 2 ? '' : 's'} does not fit this engine's memory budget of ${gib(budgetBytes)}: ${what}. Use a smaller size${n > 2 ? ' or fewer LoRAs' : ''}, or raise ENGINE_MEMORY_BUDGET_MB on a host with more memory`,
    );
  }
  const room = budgetBytes - m.weightBytes;
  const upTo = (each: number) => Math.max(1, Math.min(n, Math.floor(room / each)));
  const guidanceBranches = !job.guided ? 0 : job.published ? n : upTo(guided);
  const denoisePairs = upTo(pair);
  return { denoisePairs, guidanceBranches, peakBytes: peak(denoisePairs, guidanceBranches) };
}

/** Margin left to the operating system and the bot beside the engine. */
const HOST_MARGIN_BYTES = 2 * GiB;

/** The first GPU's memory as nvidia-smi reports it; undefined where there is none to ask. */
function gpuMemoryBytes(): number | undefined {
  try {
    const out = execFileSync(
      'nvidia-smi',
      ['--query-gpu=memory.total', '--format=csv,noheader,nounits', '-i', '0'],
      {
        encoding: 'utf8',
        timeout: 5000,
        stdio: ['ignore', 'pipe', 'ignore'],
      },
    );
    const mib = Number.parseInt(out.trim(), 10);
    return Number.isFinite(mib) && mib > 0 ? mib * 1024 ** 2 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The budget when ENGINE_MEMORY_BUDGET_MB is unset: the GPU's memory less 10% on the CUDA
 * provider (when nvidia-smi answers), else the host's memory less a margin of 2 GiB or 10%.
 */
export function defaultMemoryBudget(provider: string = 'cpu'): number {
  const gpu = provider === 'cuda' ? gpuMemoryBytes() : undefined;
  if (gpu !== undefined) return 0.9 * gpu;
  const total = totalmem();
  return Math.max(GiB, total - Math.max(HOST_MARGIN_BYTES, total / 10));
}
