// npm run docs: writes the configuration table into README.md between its markers, from the
// one schema (config/keys.ts), so the README never drifts from what the bot reads.
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { isEntryPoint } from '../engine/entry-point.ts';
import { configKeysMarkdown } from './index.ts';

export const README = fileURLToPath(new URL('../README.md', import.meta.url));
const START = '<!-- config-keys:start -->';
const END = '<!-- config-keys:end -->';

/** The README text with the current table between the markers. */
export function readmeWithConfigTable(readme: string): string {
  const from = readme.indexOf(START);
  const to = readme.indexOf(END);
  if (from < 0 || to < from) throw new Error(`README.md lacks the ${START} … ${END} markers`);
  return `${readme.slice(0, from + START.length)}\n${configKeysMarkdown()}\n${readme.slice(to)}`;
}

if (isEntryPoint(import.meta.url)) {
  writeFileSync(README, readmeWithConfigTable(readFileSync(README, 'utf8')));
  console.log('README.md: configuration table updated');
}
