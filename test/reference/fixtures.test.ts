// The reference runner on the tiny SD 1.5 fixtures, square and non-square: every case of
// reference/cases.json must pass at the tolerances the fixture suggests (discrete outputs exactly).

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fixturePath, latentSize, runFixture } from '../../tools/reference/cases.ts';
import { fixtureDir, nonsquareFixtureDir } from '../fixtures.ts';

for (const [name, dirOf, least] of [
  ['tiny-sd15', fixtureDir, 100],
  ['tiny-sd15-nonsquare', nonsquareFixtureDir, 50],
] as const) {
  test(`every reference case of the ${name} fixture passes`, { timeout: 600_000 }, async () => {
    const dir = dirOf();
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
    assert.ok(checks.length > least, `only ${checks.length} checks ran`);
  });
}

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

test('a fixture folder may stand for another by a link file holding its relative path', async () => {
  const { mkdtempSync, mkdirSync, writeFileSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const dir = mkdtempSync(join(tmpdir(), 'clora-ref-'));
  try {
    mkdirSync(join(dir, 'square', 'loras'), { recursive: true });
    writeFileSync(join(dir, 'square', 'loras', 'a.safetensors'), 'weights');
    mkdirSync(join(dir, 'wide'));
    writeFileSync(join(dir, 'wide', 'loras'), '../square/loras\n');
    assert.equal(
      fixturePath(join(dir, 'wide'), 'loras/a.safetensors'),
      join(dir, 'square', 'loras', 'a.safetensors'),
    );
    assert.equal(fixturePath(join(dir, 'wide'), 'missing/b'), join(dir, 'wide', 'missing', 'b'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a case size is read square or as height and width, the case before its params and the fixture', () => {
  const fixture = { dir: '.', spec: { latent_height: 32, latent_width: 48, cases: [] } };
  assert.deepEqual(latentSize({ id: 'a' }, fixture), { height: 32, width: 48 });
  assert.deepEqual(latentSize({ id: 'b', params: { latent_height: 48, latent_width: 32 } }, fixture), {
    height: 48,
    width: 32,
  });
  assert.deepEqual(latentSize({ id: 'c', latent_size: 16 }, fixture), { height: 16, width: 16 });
  assert.deepEqual(latentSize({ id: 'd' }, { dir: '.', spec: { latent_size: 32, cases: [] } }), {
    height: 32,
    width: 32,
  });
  assert.throws(() => latentSize({ id: 'e' }, { dir: '.', spec: { cases: [] } }), /states no latent size/);
});
