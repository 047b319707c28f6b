// Reads a LoRA .safetensors file (kohya, LoCon or diffusers/PEFT keys) into per-layer
// factors checked against the base model: ΔW = (alpha / rank) · up @ down for each layer.

import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';
import { basename, extname } from 'node:path';
import { InputError } from '../errors.ts';
import { pickledFileProblem, SafetensorsFile, WeightsError } from '../weights/safetensors.ts';
import { type FactorRole, type KeyStyle, otherBaseByName, parseKey, unsupportedKind } from './keys.ts';
import { baseModelHint, type NetworkSettings, networkSettings, triggerCandidates } from './metadata.ts';
import { type BaseWeights, type LoraTarget, type TargetLayer, targetIndex } from './targets.ts';

export interface LoraModule {
  target: LoraTarget;
  /** e.g. 'down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q' or 'text_model.encoder.layers.0.self_attn.q_proj' */
  module: string;
  kind: 'linear' | 'conv';
  rank: number;
  alpha: number;
  /** alpha / rank */
  scale: number;
  down: Float32Array;
  /** [r, in] or [r, in, kh, kw] */
  downShape: number[];
  up: Float32Array;
  /** [out, r] (4-D [out, r, 1, 1] squeezed to 2-D) */
  upShape: number[];
  /** the module as the file names it (`lora_unet_…`, `unet.…`), for messages */
  fileKey: string;
}

export interface LoraFile {
  path: string;
  name: string;
  format: 'kohya' | 'peft' | 'locon';
  modules: LoraModule[];
  /** module keys (or tensor keys of unknown form) that match no layer of the base model */
  unmatched: string[];
  metadata: Record<string, string>;
  /** the largest rank of any module */
  rank: number;
  sha256: string;
  triggerCandidates: string[];
  baseModelHint?: string;
  /** kohya's recorded network module, dim, alpha and args, where the file has them */
  network: NetworkSettings;
}

/** A LoRA file that cannot be used, with a message naming the file and what to do. */
export class LoraError extends InputError {
  override name = 'LoraError';
  constructor(
    readonly file: string,
    readonly defect: string,
  ) {
    super(`LoRA ${file}: ${defect}`);
  }
}

const SD1_ONLY = 'clora-bot composes LoRAs made for Stable Diffusion 1.x (SD 1.5 and its fine-tunes)';

interface Group {
  style: KeyStyle;
  keys: Partial<Record<FactorRole, string>>;
}

export function readLora(path: string, base: BaseWeights): LoraFile {
  const display = basename(path);
  const pickled = pickledFileProblem(path);
  if (pickled) throw new LoraError(display, pickled);
  let file: SafetensorsFile;
  try {
    file = SafetensorsFile.open(path);
  } catch (err) {
    if (err instanceof WeightsError) throw new LoraError(display, err.defect);
    throw err;
  }
  try {
    return readOpened(file, display, base);
  } catch (err) {
    if (err instanceof WeightsError) throw new LoraError(display, err.defect);
    throw err;
  } finally {
    file.close();
  }
}

function readOpened(file: SafetensorsFile, display: string, base: BaseWeights): LoraFile {
  const fail = (defect: string): never => {
    throw new LoraError(display, defect);
  };
  const keys = file.names();
  for (const key of keys) {
    const unsupported = unsupportedKind(key);
    if (unsupported) fail(`${unsupported.kind} files are not supported yet; ${unsupported.advice}`);
  }
  for (const key of keys) {
    const other = otherBaseByName(key);
    if (other) fail(`this LoRA was made for ${other.base} (${other.evidence}); ${SD1_ONLY}`);
  }

  const groups = new Map<string, Group>();
  const unmatched: string[] = [];
  for (const key of keys) {
    const parsed = parseKey(key);
    if (!parsed) {
      unmatched.push(key);
      continue;
    }
    const group = groups.get(parsed.module) ?? { style: parsed.style, keys: {} };
    if (group.keys[parsed.role])
      fail(`has two ${parsed.role} tensors for ${parsed.module}; the file is corrupt`);
    group.keys[parsed.role] = key;
    groups.set(parsed.module, group);
  }

  const index = targetIndex(base);
  const modules: LoraModule[] = [];
  const claimed = new Map<string, string>();
  const mismatches: string[] = [];
  let otherBase: string | undefined;
  const styles = new Set<KeyStyle>();
  for (const [moduleKey, group] of groups) {
    const { down, up, alpha } = group.keys;
    if (!down || !up) {
      if (!down && !up) {
        unmatched.push(moduleKey);
        continue;
      }
      fail(
        `${moduleKey} has a ${down ? 'down' : 'up'} factor but no ${down ? 'up' : 'down'} factor; the file is incomplete`,
      );
    }
    const downShape = file.info(down!).shape;
    const upShape = file.info(up!).shape;
    const candidates =
      group.style === 'kohya'
        ? index.byKohya(moduleKey)
        : [index.byPath(moduleKey)].filter((l) => l !== undefined);
    if (candidates.length === 0) {
      unmatched.push(moduleKey);
      continue;
    }
    const fitting = candidates.filter((layer) => normalise(layer, downShape, upShape) !== undefined);
    if (fitting.length === 0) {
      otherBase ??= familyFromShapes(candidates[0], downShape, upShape);
      const layer = candidates[0];
      mismatches.push(
        `layer ${layer.module} is [${layer.shape}] in the base model, but the file's factors for it are ` +
          `down [${downShape}] and up [${upShape}]`,
      );
      continue;
    }
    if (fitting.length > 1) fail(`${moduleKey} could mean ${fitting.map((l) => l.module).join(' or ')}`);
    const layer = fitting[0];
    const id = `${layer.target}:${layer.module}`;
    const previous = claimed.get(id);
    if (previous) fail(`adapts ${layer.module} twice (as ${previous} and ${moduleKey}); the file is corrupt`);
    claimed.set(id, moduleKey);
    styles.add(group.style);
    modules.push(buildModule(file, layer, moduleKey, { down: down!, up: up!, alpha }, fail));
  }
  if (otherBase) fail(`this LoRA was made for ${otherBase}; ${SD1_ONLY}`);
  if (mismatches.length) {
    const hint = baseModelHint(file.metadata);
    fail(
      `${mismatches[0]}${mismatches.length > 1 ? ` (and ${mismatches.length - 1} more layers)` : ''}; ` +
        `this LoRA was made for a different base model${hint ? ` (its metadata says ${hint})` : ''}`,
    );
  }
  if (modules.length === 0) {
    fail(
      keys.length === 0
        ? 'holds no tensors'
        : `none of its ${groups.size || keys.length} entries matches a layer of the base model ` +
            `(for example ${unmatched.slice(0, 2).join(', ')}); it is not an SD 1.x LoRA`,
    );
  }

  const isLocon = modules.some((m) => m.downShape.length === 4 && m.downShape[2] * m.downShape[3] > 1);
  const format = styles.has('kohya') ? (isLocon ? 'locon' : 'kohya') : 'peft';
  const hint = baseModelHint(file.metadata);
  return {
    path: file.path,
    name: basename(file.path, extname(file.path)),
    format,
    modules,
    unmatched,
    metadata: { ...file.metadata },
    rank: Math.max(...modules.map((m) => m.rank)),
    sha256: fileSha256(file.path),
    triggerCandidates: triggerCandidates(file.metadata),
    network: networkSettings(file.metadata),
    ...(hint ? { baseModelHint: hint } : {}),
  };
}

/** The factors' shapes in the layer's own form, or undefined where they do not fit it. */
function normalise(
  layer: TargetLayer,
  down: readonly number[],
  up: readonly number[],
): { downShape: number[]; upShape: number[] } | undefined {
  const [out, inn, kh = 1, kw = 1] = layer.shape;
  const r = down[0];
  if (!(r > 0)) return undefined;
  const upOk =
    (up.length === 2 && up[0] === out && up[1] === r) ||
    (up.length === 4 && up[0] === out && up[1] === r && up[2] === 1 && up[3] === 1);
  if (!upOk) return undefined;
  const conv = layer.shape.length === 4;
  // A 1×1 conv takes linear-shaped factors and a linear layer takes 1×1 conv ones: same numbers.
  const downOk =
    (down.length === 4 && down[1] === inn && down[2] === kh && down[3] === kw) ||
    (down.length === 2 && down[1] === inn && kh === 1 && kw === 1);
  if (!downOk) return undefined;
  return { downShape: conv ? [r, inn, kh, kw] : [r, inn], upShape: [out, r] };
}

/** Another family's signature in a misfit layer's widths, or undefined. */
function familyFromShapes(
  layer: TargetLayer,
  down: readonly number[],
  up: readonly number[],
): string | undefined {
  const width = down[1];
  if (layer.target === 'unet' && /\.attn2\.to_[kv]$/.test(layer.module)) {
    if (width === 2048) return 'SDXL (its cross-attention takes 2048-wide text embeddings)';
    if (width === 1280) return 'SDXL (its cross-attention takes 1280-wide text embeddings)';
    if (width === 1024) return 'SD 2.x (its cross-attention takes 1024-wide text embeddings)';
  }
  if (layer.target === 'text_encoder') {
    const te = Math.min(width, up[0]);
    if (te === 1280) return 'SDXL (its text encoder is 1280 wide)';
    if (te === 1024) return 'SD 2.x (its text encoder is 1024 wide)';
  }
  return undefined;
}

function buildModule(
  file: SafetensorsFile,
  layer: TargetLayer,
  fileKey: string,
  keys: { down: string; up: string; alpha?: string },
  fail: (defect: string) => never,
): LoraModule {
  const { down: downKey, up: upKey, alpha: alphaKey } = keys;
  const shapes = normalise(layer, file.info(downKey).shape, file.info(upKey).shape)!;
  const rank = shapes.downShape[0];
  let alpha = rank;
  if (alphaKey) {
    const values = file.float32(alphaKey);
    if (values.length !== 1 || !Number.isFinite(values[0])) fail(`${alphaKey} is not a single finite number`);
    // kohya treats a stored alpha of 0 as "no alpha", i.e. alpha = rank
    if (values[0] !== 0) alpha = values[0];
  }
  const down = file.float32(downKey);
  const up = file.float32(upKey);
  for (const [key, values] of [
    [downKey, down],
    [upKey, up],
  ] as const) {
    if (values.some((v) => !Number.isFinite(v)))
      fail(`${key} holds NaN or infinite values; the file is damaged`);
  }
  return {
    target: layer.target,
    module: layer.module,
    kind: layer.shape.length === 4 ? 'conv' : 'linear',
    rank,
    alpha,
    scale: alpha / rank,
    down,
    downShape: shapes.downShape,
    up,
    upShape: shapes.upShape,
    fileKey,
  };
}

/** scale · up @ down in the base weight's shape ([out, in] or [out, in, kh, kw]), for merging. */
export function mergedDelta(m: LoraModule): Float32Array {
  const [out, r] = m.upShape;
  const inner = m.down.length / r;
  const delta = new Float32Array(out * inner);
  const row = new Float64Array(inner);
  for (let o = 0; o < out; o++) {
    row.fill(0);
    for (let k = 0; k < r; k++) {
      const u = m.up[o * r + k];
      if (u === 0) continue;
      const base = k * inner;
      for (let i = 0; i < inner; i++) row[i] += u * m.down[base + i];
    }
    for (let i = 0; i < inner; i++) delta[o * inner + i] = m.scale * row[i];
  }
  return delta;
}

/** SHA-256 of the whole file (civitai lists LoRAs by it), read in chunks. */
export function fileSha256(path: string): string {
  const hash = createHash('sha256');
  const fd = openSync(path, 'r');
  try {
    const chunk = new Uint8Array(4 << 20);
    for (let n = readSync(fd, chunk); n > 0; n = readSync(fd, chunk)) hash.update(chunk.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}
