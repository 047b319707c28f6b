// The reference runner on the tiny SD 1.5 fixtures: every case of reference/cases.json
// must pass at the tolerances the fixture suggests (discrete outputs exactly).

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { runFixture } from '../../engine/reference/cases.ts';
import { fixtureDir } from '../fixtures.ts';

test('every reference case of the tiny-sd15 fixture passes', { timeout: 300_000 }, async () => {
  const dir = fixtureDir();
  const cases = JSON.parse(readFileSync(join(dir, 'reference', 'cases.json'), 'utf8')).cases as {
    id: string;
  }[];
  const checks = await runFixture(dir);
  const failures = checks.filter((k) => !k.pass);
  assert.deepEqual(
    failures.map(
      (k) => `${k.case} ${k.output}: abs ${k.maxAbs} > ${k.tolerance}${k.note ? ` (${k.note})` : ''}`,
    ),
    [],
  );
  const covered = new Set(checks.map((k) => k.case));
  assert.deepEqual(
    cases.map((c) => c.id).filter((id) => !covered.has(id)),
    [],
    'every case produced checks',
  );
  assert.ok(checks.length > 100, `only ${checks.length} checks ran`);
});

test('a case kind the runner does not know fails with its name', async () => {
  const { mkdtempSync, mkdirSync, writeFileSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const dir = mkdtempSync(join(tmpdir(), 'clora-ref-'));
  try {
    mkdirSync(join(dir, 'reference'));
    writeFileSync(
      join(dir, 'reference', 'cases.json'),
      JSON.stringify({ cases: [{ id: 'mystery', kind: 'teleport' }] }),
    );
    const checks = await runFixture(dir);
    assert.equal(checks.length, 1);
    assert.equal(checks[0].pass, false);
    assert.match(checks[0].note ?? '', /cannot run case kind 'teleport'/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
