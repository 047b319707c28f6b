// The README stays true: its configuration table is the schema's, and it names the commands
// a newcomer needs.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { README, readmeWithConfigTable } from '../../config/docs.ts';

const readme = readFileSync(README, 'utf8');

test("the README's configuration table matches config/keys.ts (npm run docs updates it)", () => {
  assert.equal(readme, readmeWithConfigTable(readme));
});

test('the README names install, test, start, worker and bench commands that package.json defines', () => {
  const scripts = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'))
    .scripts as Record<string, string>;
  for (const command of [
    'npm ci',
    'npm test',
    'npm start',
    'npm run worker',
    'npm run bench',
    'npm run demo-model',
    'npm run register',
    'npm run compose',
    'npm run reference',
    'npm run random-model',
  ]) {
    assert.ok(readme.includes(command), `README does not mention ${command}`);
    const script = command.replace(/^npm (run )?/, '');
    if (script !== 'ci') assert.ok(scripts[script], `package.json has no "${script}" script`);
  }
});
