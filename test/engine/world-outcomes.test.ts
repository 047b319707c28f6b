// The committed world keeps its outcomes: on a seed where the composition benchmark saw CLoRA
// put each LoRA's look on its own subject, CLoRA still does, and merging the same two LoRAs
// still lets a look leak onto the other subject. A changed pipeline, LoRA reader, scheduler
// or detector that breaks composition shows here before anyone reruns the benchmark.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Engine } from '../../engine/clora/engine.ts';
import { compositionOutcome, worldLoras, worldSpec } from '../../engine/world/composition.ts';
import { WORLD_DIR } from '../../engine/world/files.ts';
import { WORLD_SAMPLING } from '../../engine/world/model.ts';

const work = mkdtempSync(join(tmpdir(), 'clora-world-outcomes-'));
const loras = worldLoras(WORLD_DIR);
let engine: Engine;

before(async () => {
  engine = await Engine.load({ modelPath: join(WORLD_DIR, 'model'), cacheDir: join(work, 'cache') });
});
after(async () => {
  await engine?.close();
  rmSync(work, { recursive: true, force: true });
});

const outcome = async (seed: number, method: 'clora' | 'merge' | 'none') =>
  compositionOutcome(
    await engine.compose(worldSpec(loras, { seed, steps: WORLD_SAMPLING.steps, method })),
    loras,
  );

describe('the world’s compositions keep their outcome (seed 7, "a cat and a penguin in a house")', () => {
  it('CLoRA: the cat in the sks LoRA’s orange stripes, the penguin in the ohwx LoRA’s pink', async () => {
    const o = await outcome(7, 'clora');
    assert.equal(o.summary, 'cat: orange striped, penguin: pink');
    assert.ok(o.ownLooks && !o.leaked);
  });

  it('merge: the penguin’s pink leaks onto the cat', async () => {
    const o = await outcome(7, 'merge');
    assert.equal(o.found[0]?.look, 'pink', o.summary);
    assert.ok(o.leaked && !o.ownLooks);
  });

  it('no LoRA: the cat in its own grey', async () => {
    const o = await outcome(7, 'none');
    assert.equal(o.found[0]?.look, 'grey', o.summary);
    assert.ok(!o.leaked);
  });
});
