// LoRA checks on their own thread give the same verdicts as in-process checks.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { LoraCheckThread } from '../../bot/library/check-client.ts';
import { LoraLibrary } from '../../bot/library/index.ts';
import { openCheckpoint } from '../../engine/weights/checkpoint.ts';
import { fixtureDir, fixtureLoraFolder } from '../fixtures.ts';

test('the library checks LoRAs on a thread: good files usable, a broken one unusable with its reason', async () => {
  const work = mkdtempSync(join(tmpdir(), 'clora-checks-'));
  const modelPath = join(fixtureDir(), 'model');
  const checks = new LoraCheckThread({ modelPath });
  const ck = openCheckpoint(modelPath);
  const dir = fixtureLoraFolder(work);
  writeFileSync(join(dir, 'broken.safetensors'), Buffer.from('not a safetensors file at all'));
  const library = await LoraLibrary.open(
    dir,
    { unet: ck.unet.weights, textEncoder: ck.textEncoder.weights },
    { watch: false, checker: checks.check },
  );
  try {
    await library.settled();
    assert.deepEqual(library.names(), ['plush', 'tabby']);
    assert.equal(library.get('tabby')?.check.state, 'ok');
    assert.match(library.get('tabby')?.sha256 ?? '', /^[0-9a-f]{64}$/);
    const broken = library.list().find((e) => e.name === 'broken');
    assert.equal(broken?.usable, false);
    assert.ok(broken?.check.state === 'unusable' && broken.check.reason.length > 0, 'no reason given');
  } finally {
    library.close();
    await checks.close();
    rmSync(work, { recursive: true, force: true });
  }
});
