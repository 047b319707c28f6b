// Chat-friendly LoRA names: lowercase slugs of a–z, 0–9 and '-', unique in the library. A
// file keeps its name for as long as the process runs, so a newcomer never takes it over.

/** Longest slug; leaves room for a clash suffix and keeps action ids short. */
export const MAX_NAME_LENGTH = 60;

/** What every library name looks like; /compose reads it bare or between < and >. */
export const LORA_NAME = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/;

/** "Tabby Cat (v2.0)" → "tabby-cat-v2-0"; '' when nothing nameable is left. */
export function slugify(text: string): string {
  const slug = text
    .normalize('NFKD')
    .replace(/\p{M}+/gu, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
  return slug.slice(0, MAX_NAME_LENGTH).replace(/-+$/, '');
}

export interface NameClaim {
  /** the file name, unique in the folder; orders claims deterministically */
  file: string;
  /** the slug the file would like (from its sidecar name or its file name) */
  wanted: string;
  /** lower wins a clash before file order does (e.g. safetensors before a pickled twin) */
  rank: number;
}

/**
 * A unique name per file. Names held before (by file) are kept while still wanted; then each
 * wanted slug goes to its best claim; the others get `-2`, `-3`… in the same order.
 */
export function assignNames(
  claims: readonly NameClaim[],
  held: ReadonlyMap<string, string> = new Map(),
): Map<string, string> {
  const order = [...claims].sort(
    (a, b) => a.rank - b.rank || (a.file < b.file ? -1 : a.file > b.file ? 1 : 0),
  );
  const taken = new Set<string>();
  const names = new Map<string, string>();
  const give = (claim: NameClaim, name: string) => {
    names.set(claim.file, name);
    taken.add(name);
  };
  for (const claim of order) {
    const before = held.get(claim.file);
    if (before !== undefined && !taken.has(before) && isVariantOf(before, claim.wanted)) give(claim, before);
  }
  for (const claim of order) {
    if (!names.has(claim.file) && !taken.has(claim.wanted)) give(claim, claim.wanted);
  }
  for (const claim of order) {
    if (names.has(claim.file)) continue;
    for (let n = 2; ; n++) {
      const name = suffixed(claim.wanted, n);
      if (!taken.has(name)) {
        give(claim, name);
        break;
      }
    }
  }
  return names;
}

function suffixed(wanted: string, n: number): string {
  const suffix = `-${n}`;
  return `${wanted.slice(0, MAX_NAME_LENGTH - suffix.length).replace(/-+$/, '')}${suffix}`;
}

/** `name` is `wanted` itself or a clash suffix of it. */
function isVariantOf(name: string, wanted: string): boolean {
  if (name === wanted) return true;
  const m = /-([2-9]|[1-9]\d+)$/.exec(name);
  return m !== null && suffixed(wanted, Number(m[1])) === name;
}
