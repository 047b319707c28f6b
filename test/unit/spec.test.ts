// The engine's own checks on a CompositionSpec: sides on the model's lattice always, the host's
// request limits (MAX_LORAS, MAX_STEPS, MAX_SIZE) only where it sets them.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_SAMPLING } from '../../commands/compose/index.ts';
import { SD15_SIDE_LATTICE, SD15_UNET, SD15_VAE, sideLattice } from '../../engine/architecture.ts';
import { compositionSpec, type SpecInput, validateSpec } from '../../engine/clora/spec.ts';

const spec = (input: Partial<SpecInput> = {}) =>
  compositionSpec({
    ...DEFAULT_SAMPLING,
    prompt: 'a cat in a house',
    subjects: [{ word: 'cat', lora: { name: 'tabby', path: '/loras/tabby' }, weight: 1, triggers: [] }],
    ...input,
  });
const limits = { maxLoras: 1, maxSteps: 60, maxSize: 768 };

describe('validateSpec', () => {
  it("takes SD 1.x's side lattice from its VAE and UNet: 8 × 8", () => {
    assert.equal(sideLattice(SD15_UNET, SD15_VAE), 64);
    assert.equal(SD15_SIDE_LATTICE, 64);
    assert.equal(sideLattice({ down_block_types: ['a', 'b'] }, { block_out_channels: [1, 2, 3] }), 8);
  });

  it('refuses a side off the lattice, with or without limits', () => {
    assert.throws(
      () => validateSpec(spec({ width: 300 })),
      /width 300 is not supported: use a positive multiple of 64/,
    );
    assert.throws(() => validateSpec(spec({ height: 0 })), /height 0 is not supported/);
    assert.throws(
      () => validateSpec(spec({ width: 300 }), limits),
      /width 300 is not supported: use a multiple of 64 from 64 to 768/,
    );
    assert.throws(() => validateSpec(spec({ width: 100 }), undefined, 32), /use a positive multiple of 32/);
    assert.doesNotThrow(() => validateSpec(spec({ width: 96 }), undefined, 32));
  });

  it("bounds LoRAs, steps and sides by the host's limits only where it sets them", () => {
    const two = spec({
      prompt: 'a cat and a dog',
      subjects: [
        { word: 'cat', lora: { name: 'tabby', path: '/loras/tabby' }, weight: 1, triggers: [] },
        { word: 'dog', lora: { name: 'corgi', path: '/loras/corgi' }, weight: 1, triggers: [] },
      ],
    });
    assert.throws(() => validateSpec(two, limits), /2 LoRAs requested; at most 1 can be composed at once/);
    assert.throws(
      () => validateSpec(spec({ steps: 70 }), limits),
      /steps must be a whole number from 1 to 60, got 70/,
    );
    assert.throws(() => validateSpec(spec({ width: 1024 }), limits), /width 1024 is not supported/);
    assert.doesNotThrow(() => validateSpec(two));
    assert.doesNotThrow(() => validateSpec(spec({ steps: 500, width: 2048 })));
    assert.throws(() => validateSpec(spec({ steps: 0 })), /steps must be a whole number ≥ 1, got 0/);
  });

  it('refuses what the maths cannot take, and leaves the request ranges to the commands', () => {
    assert.throws(
      () => validateSpec(spec({ cfg: Number.NaN })),
      /the CFG scale must be a finite number, got NaN/,
    );
    const heavy = (weight: number) =>
      spec({
        subjects: [{ word: 'cat', lora: { name: 'tabby', path: '/loras/tabby' }, weight, triggers: [] }],
      });
    assert.throws(
      () => validateSpec(heavy(Infinity)),
      /the weight of "tabby" is Infinity; use a finite number/,
    );
    // CFG 1–30 and weights 0–2 are /compose's ranges (commands/compose/request.ts), not the model's.
    assert.doesNotThrow(() => validateSpec(spec({ cfg: 40 })));
    assert.doesNotThrow(() => validateSpec(heavy(3)));
  });
});
