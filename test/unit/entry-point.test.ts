// isEntryPoint, the check every script makes before running its main(): true for the script
// node was started with, in folders whose path has a space and through symbolic links; false
// for a module that is only imported.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { repoRoot } from '../fixtures.ts';

const tsx = join(repoRoot, 'node_modules', '.bin', 'tsx');
const work = mkdtempSync(join(tmpdir(), 'clora entry point '));
after(() => rmSync(work, { recursive: true, force: true }));

function run(script: string, args: string[] = [], cwd = work) {
  const r = spawnSync(tsx, [script, ...args], { cwd, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, out: r.stdout, err: r.stderr };
}

describe('isEntryPoint', () => {
  const folder = join(work, 'my scripts');
  mkdirSync(folder);
  const entry = pathToFileURL(join(repoRoot, 'engine', 'entry-point.ts')).href;
  writeFileSync(
    join(folder, 'main.ts'),
    `import { isEntryPoint } from '${entry}';\nimport './imported.ts';\nconsole.log('main', isEntryPoint(import.meta.url));\n`,
  );
  writeFileSync(
    join(folder, 'imported.ts'),
    `import { isEntryPoint } from '${entry}';\nconsole.log('imported', isEntryPoint(import.meta.url));\n`,
  );
  symlinkSync(folder, join(work, 'linked scripts'));

  test('a script in a folder with a space in its path knows it is the one run', () => {
    const r = run(join(folder, 'main.ts'));
    assert.equal(r.status, 0, r.err);
    assert.deepEqual(r.out.trim().split('\n'), ['imported false', 'main true']);
    assert.deepEqual(run('my scripts/main.ts').out.trim().split('\n'), ['imported false', 'main true']);
  });

  test('and through a symbolic link', () => {
    assert.deepEqual(
      run(join(work, 'linked scripts', 'main.ts'))
        .out.trim()
        .split('\n'),
      ['imported false', 'main true'],
    );
  });

  test('npm run compose -- --help prints its usage from a checkout whose path has a space', () => {
    const checkout = join(work, 'clora bot');
    symlinkSync(repoRoot, checkout);
    const r = run(join(checkout, 'bot', 'cli', 'compose.ts'), ['--help'], checkout);
    assert.equal(r.status, 0, r.err);
    assert.match(r.out, /^usage: npm run compose/);
  });
});
