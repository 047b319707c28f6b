// The cheap part of knowing a LoRA: its safetensors header (tensor names and shapes) and its
// metadata, read without touching tensor data, and what the key names alone give away.

import { otherBaseByName, parseKey, unsupportedKind } from '../../engine/lora/keys.ts';
import { tagsByFrequency } from '../../engine/lora/metadata.ts';
import { SD1_ONLY } from '../../engine/weights/family.ts';
import { SafetensorsFile, WeightsError } from '../../engine/weights/safetensors.ts';

export interface LoraHeader {
  /** the ss_* (kohya) and modelspec.* entries */
  metadata: Record<string, string>;
  /** training tags from ss_tag_frequency / ss_datasets, most frequent first */
  tags: string[];
  /** the largest rank of any down factor, if any factor is there */
  rank: number | undefined;
  tensorCount: number;
  /** why the key names alone rule the file out: another adapter type, base model, or no LoRA at all */
  refusal?: string;
}

const MAX_TAGS = 30;

/** The header, or why the file is not readable safetensors: a value, so it can cross threads. */
export type HeaderOutcome = { header: LoraHeader } | { problem: string };

export function readHeaderOutcome(path: string): HeaderOutcome {
  try {
    return { header: readLoraHeader(path) };
  } catch (err) {
    return {
      problem: err instanceof WeightsError ? err.defect : `could not be read (${(err as Error).message})`,
    };
  }
}

/** Reads the header; throws WeightsError for a file that is not readable safetensors. */
export function readLoraHeader(path: string): LoraHeader {
  const file = SafetensorsFile.open(path);
  try {
    const keys = file.names();
    let rank: number | undefined;
    let factors = 0;
    for (const key of keys) {
      const parsed = parseKey(key);
      if (!parsed || parsed.role === 'alpha') continue;
      factors++;
      const r = parsed.role === 'down' ? file.info(key).shape[0] : undefined;
      if (r !== undefined && r > 0) rank = Math.max(rank ?? 0, r);
    }
    const metadata: Record<string, string> = {};
    for (const [k, v] of Object.entries(file.metadata)) {
      if (k.startsWith('ss_') || k.startsWith('modelspec.')) metadata[k] = v;
    }
    const refusal = refusalByKeys(keys, factors);
    return {
      metadata,
      tags: tagsByFrequency(file.metadata).slice(0, MAX_TAGS),
      rank,
      tensorCount: keys.length,
      ...(refusal ? { refusal } : {}),
    };
  } finally {
    file.close();
  }
}

function refusalByKeys(keys: readonly string[], factors: number): string | undefined {
  for (const key of keys) {
    const unsupported = unsupportedKind(key);
    if (unsupported) return `${unsupported.kind} files are not supported yet; ${unsupported.advice}`;
  }
  for (const key of keys) {
    const other = otherBaseByName(key);
    if (other) return `this LoRA was made for ${other.base} (${other.evidence}); ${SD1_ONLY}`;
  }
  if (keys.length === 0) return 'holds no tensors';
  if (keys.some((k) => k === 'emb_params' || k === 'string_to_param' || k === 'clip_l')) {
    return 'is a textual-inversion embedding, not a LoRA; embeddings are not supported';
  }
  if (factors === 0) {
    return (
      `none of its ${keys.length} tensors is a LoRA factor (for example '${keys[0]}'); ` +
      'it is not a LoRA file (a full checkpoint or a VAE?)'
    );
  }
  return undefined;
}

/** The trigger words the metadata declares (modelspec), else its most frequent training tag. */
export function metadataTriggers(
  metadata: Readonly<Record<string, string>>,
  tags: readonly string[],
): string[] {
  const declared = (metadata['modelspec.trigger_phrase'] ?? '')
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '');
  if (declared.length) return [...new Set(declared)];
  return tags.slice(0, 1);
}
