// What a LoRA's own metadata says about it: kohya's ss_* training record and the
// modelspec.* fields, read for trigger words and the base model it was trained on.

const MAX_TRIGGERS = 5;

/** Trigger word candidates, most likely first: the declared trigger phrase, then tags by frequency. */
export function triggerCandidates(meta: Readonly<Record<string, string>>): string[] {
  const out: string[] = [];
  const add = (word: string) => {
    const w = word.trim();
    if (w && !out.includes(w)) out.push(w);
  };
  for (const phrase of (meta['modelspec.trigger_phrase'] ?? '').split(',')) add(phrase);

  for (const tag of tagsByFrequency(meta)) {
    if (out.length >= MAX_TRIGGERS) break;
    add(tag);
  }
  return out;
}

/**
 * kohya's training tags, most frequent first (ties by name): the counts of ss_tag_frequency
 * summed over its folders, or per dataset in ss_datasets, as newer kohya scripts keep them.
 */
export function tagsByFrequency(meta: Readonly<Record<string, string>>): string[] {
  const counts = new Map<string, number>();
  const add = (table: unknown) => {
    if (!isRecord(table)) return;
    for (const folder of Object.values(table)) {
      if (!isRecord(folder)) continue;
      for (const [raw, n] of Object.entries(folder)) {
        const tag = raw.trim();
        if (tag && typeof n === 'number' && Number.isFinite(n)) counts.set(tag, (counts.get(tag) ?? 0) + n);
      }
    }
  };
  add(parseJson(meta.ss_tag_frequency));
  const datasets = parseJson(meta.ss_datasets);
  if (Array.isArray(datasets)) for (const d of datasets) if (isRecord(d)) add(d.tag_frequency);
  return [...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map(([tag]) => tag);
}

/** The base model the file says it was trained for (modelspec architecture, kohya's version or model name). */
export function baseModelHint(meta: Readonly<Record<string, string>>): string | undefined {
  const candidates = [
    meta['modelspec.architecture'],
    meta.ss_base_model_version,
    meta.ss_v2 === 'True' ? 'sd_v2' : undefined,
    meta.ss_sd_model_name,
  ];
  return candidates.find((c) => c !== undefined && c.trim() !== '');
}

/** The network settings kohya recorded (module, dim, alpha, args), for display. */
export interface NetworkSettings {
  module?: string;
  dim?: number;
  alpha?: number;
  args?: Record<string, unknown>;
}

export function networkSettings(meta: Readonly<Record<string, string>>): NetworkSettings {
  const num = (s: string | undefined) =>
    s !== undefined && Number.isFinite(Number(s)) ? Number(s) : undefined;
  const args = parseJson(meta.ss_network_args);
  const settings: NetworkSettings = {};
  if (meta.ss_network_module) settings.module = meta.ss_network_module;
  const dim = num(meta.ss_network_dim);
  if (dim !== undefined) settings.dim = dim;
  const alpha = num(meta.ss_network_alpha);
  if (alpha !== undefined) settings.alpha = alpha;
  if (isRecord(args)) settings.args = args;
  return settings;
}

function parseJson(text: string | undefined): unknown {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
