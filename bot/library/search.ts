// Finding LoRAs by what people remember of them: the name, the display name, a trigger word
// or a training tag. Exact and partial matches rank first; typos fall back to closest.ts.

import { closestNames } from '../../commands/compose/closest.ts';
import type { LoraEntry } from './entry.ts';
import { slugify } from './names.ts';

/** Longer queries are cut: closest.ts stops guessing typos beyond this length anyway. */
export const MAX_QUERY_LENGTH = 64;

/** The query as search reads it: trimmed, single-spaced, lowercase, at most MAX_QUERY_LENGTH. */
export function normaliseQuery(query: string): string {
  return query.replace(/\s+/g, ' ').trim().toLowerCase().slice(0, MAX_QUERY_LENGTH).trim();
}

/** How well an entry matches, lower is better; each tier is a different kind of evidence. */
const Tier = {
  Name: 0,
  Trigger: 1,
  NamePrefix: 2,
  NameWords: 3,
  Tag: 4,
  AnyWords: 5,
  Typo: 6,
} as const;
type Tier = (typeof Tier)[keyof typeof Tier];

/** Entries matching `query`, best first; all entries (in their order) for an empty query. */
export function searchEntries(entries: readonly LoraEntry[], query: string): LoraEntry[] {
  const q = normaliseQuery(query);
  if (q === '') return [...entries];
  const slug = slugify(q);
  const words = q.split(' ');
  const hits = new Map<LoraEntry, { tier: Tier; order: number }>();
  for (const entry of entries) {
    const names = [entry.name, entry.displayName.toLowerCase()];
    const triggers = entry.triggers.map((t) => t.toLowerCase());
    const tags = entry.tags.map((t) => t.toLowerCase());
    const inName = (w: string) => names.some((n) => n.includes(w));
    const inLabel = (w: string) => triggers.some((t) => t.includes(w)) || tags.some((t) => t.includes(w));
    let tier: Tier | undefined;
    if (names.includes(q) || entry.name === slug) tier = Tier.Name;
    else if (triggers.includes(q)) tier = Tier.Trigger;
    else if (names.some((n) => n.startsWith(q)) || (slug !== '' && entry.name.startsWith(slug))) {
      tier = Tier.NamePrefix;
    } else if (words.every(inName)) tier = Tier.NameWords;
    else if (tags.includes(q)) tier = Tier.Tag;
    else if (words.every((w) => inName(w) || inLabel(w))) tier = Tier.AnyWords;
    if (tier !== undefined) hits.set(entry, { tier, order: 0 });
  }

  // Typos: every name, trigger and tag of the rest, ranked by closest.ts.
  const owners = new Map<string, LoraEntry[]>();
  for (const entry of entries) {
    if (hits.has(entry)) continue;
    for (const text of [entry.name, entry.displayName, ...entry.triggers, ...entry.tags]) {
      const key = text.toLowerCase();
      const list = owners.get(key);
      if (!list) owners.set(key, [entry]);
      else if (!list.includes(entry)) list.push(entry);
    }
  }
  let order = 0;
  for (const text of closestNames(q, owners.keys(), Number.POSITIVE_INFINITY)) {
    for (const entry of owners.get(text) ?? []) {
      if (!hits.has(entry)) hits.set(entry, { tier: Tier.Typo, order: order++ });
    }
  }

  return [...hits]
    .sort(
      ([a, ha], [b, hb]) =>
        ha.tier - hb.tier ||
        Number(b.usable) - Number(a.usable) ||
        ha.order - hb.order ||
        (a.name < b.name ? -1 : a.name > b.name ? 1 : 0),
    )
    .map(([entry]) => entry);
}
