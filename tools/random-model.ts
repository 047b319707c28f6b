// Writes a Stable Diffusion 1.x checkpoint with random weights in the LDM single-file key
// layout (engine/weights/initial-weights.ts), for benchmarks and tests that need the real
// sizes without downloading a model. The file is streamed tensor by tensor, so writing SD
// 1.5's 4 GB never holds more than one chunk in memory.

import { createHash } from 'node:crypto';
import {
  closeSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  openSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import {
  type ClipTextConfig,
  SD15_TEXT_ENCODER,
  SD15_UNET,
  SD15_VAE,
  type UNetConfig,
  type VaeConfig,
} from '../engine/architecture.ts';
import { bytesOf } from '../engine/graph/dtype.ts';
import type { Checkpoint } from '../engine/weights/checkpoint.ts';
import {
  fillValues,
  type ModelPart,
  parameterCount,
  type TensorPlan,
  tensorKey,
  textEncoderTensors,
  unetTensors,
  vaeTensors,
} from '../engine/weights/initial-weights.ts';

export interface RandomModelSpec {
  unet: UNetConfig;
  textEncoder: ClipTextConfig;
  vae: VaeConfig;
  seed: number;
}

export const SD15_RANDOM_MODEL: RandomModelSpec = {
  unet: SD15_UNET,
  textEncoder: SD15_TEXT_ENCODER,
  vae: SD15_VAE,
  seed: 0,
};

/** Bumped whenever the values written for a spec change, so old files are rewritten. */
const GENERATOR_VERSION = 1;
const METADATA_KEY = 'clora.random_model';
export const CHECKPOINT_FILE = 'model.safetensors';
const TOKENIZER_FILES = ['vocab.json', 'merges.txt'];
const OPTIONAL_TOKENIZER_FILES = ['tokenizer_config.json', 'special_tokens_map.json'];

export function modelTensors(spec: RandomModelSpec): Record<ModelPart, TensorPlan[]> {
  return {
    unet: unetTensors(spec.unet),
    textEncoder: textEncoderTensors(spec.textEncoder),
    vae: vaeTensors(spec.vae),
  };
}

/** Parameters of runwayml/stable-diffusion-v1-5 (UNet, CLIP ViT-L/14 text tower, AutoencoderKL). */
export const SD15_PARAMETERS: Readonly<Record<ModelPart, number>> = {
  unet: 859_520_964,
  textEncoder: 123_060_480,
  vae: 83_653_863,
};

/**
 * Checks that a checkpoint opened from a random model reads back as its spec: the configs
 * derived from shapes and each network's parameter count. Returns one line per network;
 * throws naming the first difference.
 */
export function verifyRandomModel(ck: Checkpoint, spec: RandomModelSpec): string[] {
  const planned = modelTensors(spec);
  const lines: string[] = [];
  const nets: [ModelPart, string, object, object, Checkpoint['unet']['weights']][] = [
    ['unet', 'UNet', ck.unet.config, spec.unet, ck.unet.weights],
    ['textEncoder', 'text encoder', ck.textEncoder.config, spec.textEncoder, ck.textEncoder.weights],
    ['vae', 'VAE', ck.vae.config, spec.vae, ck.vae.weights],
  ];
  for (const [part, label, got, want, weights] of nets) {
    for (const key of Object.keys(want)) {
      const [a, b] = [(got as Record<string, unknown>)[key], (want as Record<string, unknown>)[key]];
      if (JSON.stringify(a) !== JSON.stringify(b)) {
        throw new Error(
          `${label} config reads back ${key} = ${JSON.stringify(a)}, written as ${JSON.stringify(b)}`,
        );
      }
    }
    const count = weights.names().reduce((sum, n) => sum + weights.shape(n).reduce((a, b) => a * b, 1), 0);
    if (count !== parameterCount(planned[part])) {
      throw new Error(
        `${label} reads back ${count} parameters, ${parameterCount(planned[part])} were written`,
      );
    }
    lines.push(`${label}: config matches, ${(count / 1e6).toFixed(2)}M parameters`);
  }
  return lines;
}

// ---------------------------------------------------------------- the file

/** A short hash of the spec and generator, stored in the file's metadata. */
export function specKey(spec: RandomModelSpec): string {
  const canonical = JSON.stringify({
    v: GENERATOR_VERSION,
    seed: spec.seed,
    unet: spec.unet,
    textEncoder: spec.textEncoder,
    vae: spec.vae,
  });
  return createHash('sha256').update(canonical).digest('hex').slice(0, 24);
}

interface Layout {
  header: Uint8Array;
  dataBytes: number;
  tensors: TensorPlan[];
}

function layout(spec: RandomModelSpec): Layout {
  const parts = modelTensors(spec);
  const tensors = [...parts.unet, ...parts.textEncoder, ...parts.vae];
  const header: Record<string, unknown> = {
    __metadata__: {
      format: 'pt',
      [METADATA_KEY]: JSON.stringify({ key: specKey(spec), seed: spec.seed }),
    },
  };
  let offset = 0;
  for (const t of tensors) {
    const bytes = 4 * t.shape.reduce((a, b) => a * b, 1);
    header[t.name] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8); // data starts 8-aligned
  const text = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + text.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(text.length), true);
  out.set(text, 8);
  return { header: out, dataBytes: offset, tensors };
}

/** True when `path` is a complete file for this spec: same header bytes and the full size. */
function isComplete(path: string, expected: Layout): boolean {
  if (!existsSync(path) || statSync(path).size !== expected.header.length + expected.dataBytes) return false;
  const fd = openSync(path, 'r');
  try {
    const head = new Uint8Array(expected.header.length);
    return readSync(fd, head, 0, head.length, 0) === head.length && Buffer.from(head).equals(expected.header);
  } finally {
    closeSync(fd);
  }
}

export interface WriteRandomModelOptions {
  /** folder holding the CLIP tokenizer (vocab.json, merges.txt) to copy beside the checkpoint */
  tokenizerDir: string;
  /** called after each tensor with bytes written so far and the total */
  onProgress?: (written: number, total: number) => void;
}

export interface RandomModel {
  /** the checkpoint file, `<dir>/model.safetensors`; its tokenizer is `<dir>/tokenizer/` */
  path: string;
  /** false when a complete file for the same spec was already there */
  written: boolean;
  bytes: number;
  parameters: Record<ModelPart, number>;
}

/** Elements generated at a time: 16 MiB of float32. */
const CHUNK = 4 * 1024 * 1024;

/** Writes `<dir>/model.safetensors` and `<dir>/tokenizer/` unless a complete copy for `spec` is there. */
export function writeRandomModel(
  dir: string,
  spec: RandomModelSpec,
  options: WriteRandomModelOptions,
): RandomModel {
  const plan = layout(spec);
  const path = join(dir, CHECKPOINT_FILE);
  const total = plan.header.length + plan.dataBytes;
  const parts = modelTensors(spec);
  const parameters = {
    unet: parameterCount(parts.unet),
    textEncoder: parameterCount(parts.textEncoder),
    vae: parameterCount(parts.vae),
  };
  mkdirSync(dir, { recursive: true });
  copyTokenizer(options.tokenizerDir, join(dir, 'tokenizer'));
  if (isComplete(path, plan)) return { path, written: false, bytes: total, parameters };

  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  try {
    let at = writeAll(fd, plan.header, 0);
    const buffer = new Float32Array(Math.min(CHUNK, largest(plan.tensors)));
    for (const t of plan.tensors) {
      const count = t.shape.reduce((a, b) => a * b, 1);
      const key = tensorKey(spec.seed, t.name);
      for (let start = 0; start < count; start += CHUNK) {
        const chunk = buffer.subarray(0, Math.min(CHUNK, count - start));
        fillValues(chunk, t.init, key, start);
        at = writeAll(fd, bytesOf(chunk), at);
      }
      options.onProgress?.(at, total);
    }
    closeSync(fd);
    renameSync(tmp, path);
  } catch (e) {
    try {
      closeSync(fd);
    } catch {
      // already closed
    }
    rmSync(tmp, { force: true });
    throw e;
  }
  return { path, written: true, bytes: total, parameters };
}

function largest(tensors: readonly TensorPlan[]): number {
  return Math.max(1, ...tensors.map((t) => t.shape.reduce((a, b) => a * b, 1)));
}

function writeAll(fd: number, bytes: Uint8Array, position: number): number {
  let done = 0;
  while (done < bytes.byteLength)
    done += writeSync(fd, bytes, done, bytes.byteLength - done, position + done);
  return position + done;
}

function copyTokenizer(from: string, to: string): void {
  const missing = TOKENIZER_FILES.filter((f) => !existsSync(join(from, f)));
  if (missing.length) {
    throw new Error(
      `the tokenizer folder ${from} lacks ${missing.join(' and ')}; give a CLIP tokenizer folder (vocab.json, merges.txt)`,
    );
  }
  mkdirSync(to, { recursive: true });
  for (const f of [...TOKENIZER_FILES, ...OPTIONAL_TOKENIZER_FILES]) {
    const src = join(from, f);
    const dst = join(to, f);
    if (existsSync(src) && (!existsSync(dst) || statSync(dst).size !== statSync(src).size))
      copyFileSync(src, dst);
  }
}
