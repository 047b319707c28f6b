// The arrows between the top-level folders (DESIGN.md): bot → commands → engine, never back;
// and no circle between folders beyond the few listed here, so a new one fails until it is
// either undone or listed on purpose.

import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, posix, relative, sep } from 'node:path';
import { describe, it } from 'node:test';
import { repoRoot } from '../fixtures.ts';

const LAYERS = ['commands', 'bot', 'engine'];

/** What each layer must never import (any import: a type, a side effect, a dynamic one, a worker's URL). */
const FORBIDDEN: Record<string, readonly string[]> = {
  commands: ['bot'],
  engine: ['commands', 'bot'],
};

/** The folder circles there are today, each listed whole: a circle with any other folder in it fails. */
const KNOWN_CIRCLES: readonly (readonly string[])[] = [
  ['engine/graph', 'engine/graph/ops'],
  ['commands', 'commands/compose'],
  [
    'bot',
    'bot/civitai',
    'bot/discord',
    'bot/discord/commands',
    'bot/discord/components',
    'bot/engine-host',
    'bot/library',
    'bot/ops',
    'bot/playground',
    'bot/queue',
    'bot/slack',
    'bot/slack/listeners',
    'bot/slack/listeners/actions',
    'bot/slack/listeners/commands',
    'bot/slack/listeners/shortcuts',
    'bot/slack/listeners/views',
  ],
];

interface ImportLine {
  /** the importing file, from the repository root with '/' */
  from: string;
  /** the imported file, likewise */
  to: string;
}

const SPECIFIER =
  /(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s*|\bnew\s+URL\s*\(\s*)['"](\.{1,2}\/[^'"]*)['"]/gm;

function sources(dir: string): string[] {
  return readdirSync(join(repoRoot, dir), { withFileTypes: true }).flatMap((entry) => {
    const path = posix.join(dir, entry.name);
    if (entry.isDirectory()) return sources(path);
    return /\.(ts|mts|js|mjs)$/.test(entry.name) ? [path] : [];
  });
}

/** Every relative import in the layers' files, comments left out. */
function importLines(): ImportLine[] {
  return LAYERS.flatMap(sources).flatMap((from) => {
    const code = readFileSync(join(repoRoot, from), 'utf8')
      .replace(/\/\*[\s\S]*?\*\//g, '')
      .replace(/^\s*\/\/.*$/gm, '');
    return [...code.matchAll(SPECIFIER)].map((m) => ({
      from,
      to: relative(repoRoot, join(repoRoot, dirname(from), m[1]))
        .split(sep)
        .join('/'),
    }));
  });
}

const layerOf = (path: string) => path.split('/')[0];

/** Groups of folders that import one another round a circle (Tarjan's strongly connected components). */
function folderCircles(edges: ReadonlyMap<string, ReadonlySet<string>>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const circles: string[][] = [];
  const visit = (v: string) => {
    index.set(v, index.size);
    low.set(v, index.get(v)!);
    stack.push(v);
    for (const w of edges.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (stack.includes(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const group: string[] = [];
    for (let w = stack.pop()!; ; w = stack.pop()!) {
      group.push(w);
      if (w === v) break;
    }
    if (group.length > 1) circles.push(group.sort());
  };
  for (const v of edges.keys()) if (!index.has(v)) visit(v);
  return circles;
}

describe('layers', () => {
  const lines = importLines();

  it('reads the import lines it checks', () => {
    assert.ok(lines.some((l) => l.from.startsWith('commands/') && l.to.startsWith('engine/')));
    assert.ok(lines.some((l) => l.from.startsWith('bot/') && l.to.startsWith('commands/')));
  });

  it('imports only downwards: commands/ nothing of bot/, engine/ nothing of commands/ or bot/', () => {
    const wrong = lines
      .filter((l) => FORBIDDEN[layerOf(l.from)]?.includes(layerOf(l.to)))
      .map((l) => `${l.from} imports ${l.to}`);
    assert.deepEqual(wrong, []);
  });

  it('has no circle between folders but the known ones', () => {
    const edges = new Map<string, Set<string>>();
    for (const { from, to } of lines) {
      const [a, b] = [dirname(from), dirname(to)];
      if (a === b) continue;
      if (!edges.has(a)) edges.set(a, new Set());
      edges.get(a)!.add(b);
    }
    const unknown = folderCircles(edges)
      .filter((circle) => !KNOWN_CIRCLES.some((known) => circle.every((f) => known.includes(f))))
      .map((circle) => {
        const arrows = circle.flatMap((a) =>
          [...(edges.get(a) ?? [])].filter((b) => circle.includes(b)).map((b) => `${a} → ${b}`),
        );
        return `${circle.join(' ↔ ')} (${arrows.join(', ')})`;
      });
    assert.deepEqual(unknown, []);
  });
});
