// "Did you mean …?" for LoRA names, options and enum values: a small edit distance that
// also scores a typo against each part of a hyphenated name.

/** Optimal-string-alignment distance: insertions, deletions, substitutions, adjacent swaps. */
export function editDistance(a: string, b: string): number {
  const s = [...a];
  const t = [...b];
  if (s.length === 0) return t.length;
  if (t.length === 0) return s.length;
  let prev2: number[] = [];
  let prev = Array.from({ length: t.length + 1 }, (_, j) => j);
  for (let i = 1; i <= s.length; i++) {
    const row = [i];
    for (let j = 1; j <= t.length; j++) {
      const cost = s[i - 1] === t[j - 1] ? 0 : 1;
      let d = Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + cost);
      if (i > 1 && j > 1 && s[i - 1] === t[j - 2] && s[i - 2] === t[j - 1]) d = Math.min(d, prev2[j - 2] + 1);
      row.push(d);
    }
    prev2 = prev;
    prev = row;
  }
  return prev[t.length];
}

const NAME_PARTS = /[\s_.\-/]+/;
// Longer queries would only cost time: nobody mistypes a 65-character name into a near miss.
const MAX_QUERY_LENGTH = 64;

/** How far `query` is from `candidate`: the whole name, one of its parts, or its prefix. */
function nameScore(query: string, candidate: string): number {
  const q = query.toLowerCase();
  const c = candidate.toLowerCase();
  if (q === c) return 0;
  let score = editDistance(q, c);
  if (c.includes(q) && q.length >= 3) score = Math.min(score, 0.5);
  for (const part of c.split(NAME_PARTS)) {
    if (part.length > 0) score = Math.min(score, editDistance(q, part) + 0.5);
  }
  if (c.length > q.length) score = Math.min(score, editDistance(q, c.slice(0, q.length)) + 0.5);
  return score;
}

/**
 * Up to `max` candidates near `query`, best first; none when nothing is plausibly a typo
 * of it (more than about a third of its characters wrong).
 */
export function closestNames(query: string, candidates: Iterable<string>, max = 3): string[] {
  if (query.length === 0 || query.length > MAX_QUERY_LENGTH) return [];
  const tolerance = Math.max(1, Math.round([...query].length * 0.4));
  const scored: { name: string; score: number }[] = [];
  for (const name of candidates) {
    const score = nameScore(query, name);
    if (score <= tolerance) scored.push({ name, score });
  }
  scored.sort((a, b) => a.score - b.score || a.name.length - b.name.length || (a.name < b.name ? -1 : 1));
  return scored.slice(0, max).map((s) => s.name);
}

/**
 * Up to `max` names for a partly typed one, best first: names starting with it, then names
 * containing it, then near misses. What every completion list (Discord's autocomplete, the
 * playground's input box) offers.
 */
export function completeName(partial: string, names: readonly string[], max: number): string[] {
  const p = partial.toLowerCase();
  const found = new Set<string>();
  for (const n of names) if (n.toLowerCase().startsWith(p)) found.add(n);
  for (const n of names) if (n.toLowerCase().includes(p)) found.add(n);
  for (const n of closestNames(p, names, max)) found.add(n);
  return [...found].slice(0, max);
}

/** "'a'", "'a' or 'b'", "'a', 'b' or 'c'". */
export function quotedAlternatives(names: readonly string[]): string {
  const quoted = names.map((n) => `'${n}'`);
  if (quoted.length <= 1) return quoted.join('');
  return `${quoted.slice(0, -1).join(', ')} or ${quoted[quoted.length - 1]}`;
}
