// LoRA checks on their own thread give the same verdicts as in-process checks, and a hostile
// header is parsed there too, never on the bot's event loop.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
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

/** A LoRA-named file whose header is `entries` zero-size tensors with long names: ~`entries`×200 bytes of JSON. */
function hugeHeaderFile(path: string, entries: number): void {
  const parts: string[] = [];
  const pad = 'x'.repeat(150);
  for (let i = 0; i < entries; i++)
    parts.push(`"t${i}_${pad}":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}`);
  const json = Buffer.from(`{${parts.join(',')}}`);
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(json.length));
  writeFileSync(path, Buffer.concat([prefix, json]));
}

test('a 60 MB header is parsed off the event loop: timers keep firing while the library scans it', async () => {
  const work = mkdtempSync(join(tmpdir(), 'clora-header-'));
  const dir = join(work, 'loras');
  mkdirSync(dir);
  hugeHeaderFile(join(dir, 'huge.safetensors'), 280_000);
  assert.ok(statSync(join(dir, 'huge.safetensors')).size > 55e6, 'the header is about 60 MB');
  const thread = new LoraCheckThread();
  try {
    // Wait for the thread to be up, so the measurement covers the header alone.
    await thread.readHeader(join(work, 'absent.safetensors'));
    // A 10 ms timer: the longest gap between its ticks is the longest the loop was held.
    let last = performance.now();
    let worstMs = 0;
    const ticker = setInterval(() => {
      const now = performance.now();
      worstMs = Math.max(worstMs, now - last);
      last = now;
    }, 10);
    const started = performance.now();
    const library = await LoraLibrary.open(dir, undefined, {
      watch: false,
      rescanIntervalMs: 0,
      headerReader: thread.readHeader,
    });
    const scanMs = performance.now() - started;
    await new Promise((resolve) => setTimeout(resolve, 30));
    clearInterval(ticker);
    library.close();
    const entry = library.get('huge');
    assert.ok(entry?.check.state === 'unusable', 'the file is listed as unusable');
    assert.match(entry.check.reason, /none of its 280000 tensors is a LoRA factor/);
    // Parsed on the main thread, the worst pause is the whole parse (most of the scan).
    assert.ok(
      worstMs < Math.max(150, scanMs / 4),
      `the event loop stalled ${worstMs.toFixed(0)} ms during a ${scanMs.toFixed(0)} ms scan`,
    );
  } finally {
    await thread.close();
    rmSync(work, { recursive: true, force: true });
  }
});
