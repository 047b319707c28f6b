// The engine's processes start with glibc malloc settings that return freed activations to
// the system: the npm scripts that run the engine carry them, and a process started without
// them says how to set them.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ENGINE_MALLOC_ENV, mallocAdvice, withEngineMallocEnv } from '../../engine/allocator.ts';
import { repoRoot } from '../fixtures.ts';

const scripts = (
  JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { scripts: Record<string, string> }
).scripts;

test('every npm script that runs the engine starts it with the malloc settings', () => {
  const settings = Object.entries(ENGINE_MALLOC_ENV)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  for (const name of [
    'start',
    'worker',
    'compose',
    'test',
    'bench',
    'reference',
    'demo-model',
    'train-world',
    'world-check',
  ]) {
    const launch = scripts[name].split('&&').pop()!.trim();
    assert.match(launch, /^\S+ \S+ \S+ (node|tsx) /, `${name} runs: ${launch}`);
    assert.ok(launch.startsWith(`${settings} `), `${name} runs: ${launch}`);
  }
});

test('an engine process on glibc without the settings is told which are missing and how to set them', () => {
  const advice = mallocAdvice({ MALLOC_ARENA_MAX: '4' }, true);
  assert.match(advice ?? '', /without MALLOC_MMAP_THRESHOLD_ and GLIBC_TUNABLES:/);
  assert.match(
    advice ?? '',
    /MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=1048576 GLIBC_TUNABLES=glibc\.malloc\.hugetlb=1/,
  );
  assert.equal(mallocAdvice({ ...ENGINE_MALLOC_ENV }, true), undefined);
  assert.equal(mallocAdvice({}, false), undefined, 'other C libraries read no such settings');
});

test("the settings fill in what the operator left unset and keep the operator's own", () => {
  const env = withEngineMallocEnv({ MALLOC_ARENA_MAX: '8', PATH: '/bin' });
  assert.equal(env.MALLOC_ARENA_MAX, '8');
  assert.equal(env.MALLOC_MMAP_THRESHOLD_, ENGINE_MALLOC_ENV.MALLOC_MMAP_THRESHOLD_);
  assert.equal(env.PATH, '/bin');
});
