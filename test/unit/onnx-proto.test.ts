// engine/graph/onnx/onnx.ts is exactly what `npm run proto` generates from the onnx.proto3 beside
// it: nobody edited it by hand, and nobody replaced the schema without regenerating.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { test } from 'node:test';
import { repoRoot } from '../fixtures.ts';

test('onnx.ts is what npm run proto generates from onnx.proto3', () => {
  const out = mkdtempSync(join(tmpdir(), 'clora-onnx-proto-'));
  try {
    const run = spawnSync(process.execPath, [join(repoRoot, 'engine/graph/onnx/generate.mjs'), out], {
      env: {
        ...process.env,
        PATH: `${join(repoRoot, 'node_modules', '.bin')}${delimiter}${process.env.PATH}`,
      },
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(run.status, 0, run.stderr);
    const committed = readFileSync(join(repoRoot, 'engine/graph/onnx/onnx.ts'), 'utf8');
    assert.ok(
      committed === readFileSync(join(out, 'onnx.ts'), 'utf8'),
      'run `npm run proto` and commit onnx.ts',
    );
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
