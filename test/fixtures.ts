// Where the tiny SD 1.5 fixtures live: CLORA_FIXTURES, else ../shared/fixtures/tiny-sd15
// beside the repository.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = fileURLToPath(new URL('..', import.meta.url));

export function fixtureDir(): string {
  const dir = process.env.CLORA_FIXTURES ?? resolve(repoRoot, '..', 'shared', 'fixtures', 'tiny-sd15');
  if (!existsSync(join(dir, 'reference', 'cases.json'))) {
    throw new Error(`tiny-sd15 fixtures not found at ${dir}; set CLORA_FIXTURES to the fixture directory`);
  }
  return dir;
}
