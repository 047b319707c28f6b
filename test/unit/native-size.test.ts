// Sizes default to the model's own (unet sample_size × VAE scale factor), as diffusers'
// pipelines do: 256 for the tiny fixture, 512 for SD 1.5, capped by MAX_SIZE; a request that
// leaves the size to the model carries none, and the worker that runs it fills it in.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { sizeChoices } from '../../bot/discord/autocomplete.ts';
import { specFromRequest } from '../../bot/engine-host/spec.ts';
import { optionsExample } from '../../commands/compose/help.ts';
import {
  composeSettings,
  DEFAULT_SAMPLING,
  formatCompose,
  helpReply,
  parseCompose,
} from '../../commands/compose/index.ts';
import { nativeImageSize, SD15_UNET, SD15_VAE } from '../../engine/architecture.ts';
import { compositionSpec, defaultImageSize } from '../../engine/clora/spec.ts';
import { openCheckpoint } from '../../engine/weights/checkpoint.ts';
import { fixtureDir } from '../fixtures.ts';

describe('the model’s own size', () => {
  it('is sample_size × 2^(VAE levels − 1): 512 for SD 1.5, 256 for the tiny fixture', () => {
    assert.equal(nativeImageSize(SD15_UNET, SD15_VAE), 512);
    const tiny = openCheckpoint(join(fixtureDir(), 'model'));
    assert.equal(nativeImageSize(tiny.unet.config, tiny.vae.config), 256);
  });

  it('is capped by the largest allowed side and kept on the 64-pixel lattice', () => {
    assert.equal(defaultImageSize(512, { minSize: 64, maxSize: 1024 }), 512);
    assert.equal(defaultImageSize(512, { minSize: 64, maxSize: 128 }), 128);
    assert.equal(defaultImageSize(512, { minSize: 64, maxSize: 300 }), 256);
    assert.equal(defaultImageSize(256, { minSize: 64, maxSize: 1024 }), 256);
  });

  it('fills a spec that states no size, and leaves a stated one alone', () => {
    const base = { ...DEFAULT_SAMPLING, prompt: 'a cat', subjects: [] };
    assert.deepEqual([compositionSpec(base, 256).width, compositionSpec(base, 256).height], [256, 256]);
    assert.equal(compositionSpec(base).width, 512);
    const stated = compositionSpec({ ...base, width: 384, height: 256 }, 256);
    assert.deepEqual([stated.width, stated.height], [384, 256]);
  });
});

describe('a /compose without --size', () => {
  const resolve = (name: string) => ({ ref: { name, path: `/loras/${name}.safetensors` }, triggers: [] });

  it('leaves the size to the model when the bot does not know it, and the worker fills it in', () => {
    const parsed = parseCompose('cat:<tabby> in a house --seed 1', composeSettings());
    assert.ok(parsed.ok);
    assert.deepEqual([parsed.request.width, parsed.request.height], [null, null]);
    assert.equal(formatCompose(parsed.request, composeSettings()).includes('--size'), false);
    const spec = specFromRequest(parsed.request, resolve, {}, 256);
    assert.deepEqual([spec.width, spec.height], [256, 256]);
  });

  it('takes the default the bot read from its model, and a stated size over it', () => {
    const settings = composeSettings({ defaults: { width: 256, height: 256 } });
    const plain = parseCompose('cat:<tabby> in a house', settings);
    assert.ok(plain.ok);
    assert.deepEqual([plain.request.width, plain.request.height], [256, 256]);
    const wide = parseCompose('cat:<tabby> in a house --size 384x256 --seed 1', settings);
    assert.ok(wide.ok);
    assert.equal(formatCompose(wide.request, settings).includes('--size 384x256'), true);
    const spec = specFromRequest(wide.request, resolve, {}, 512);
    assert.deepEqual([spec.width, spec.height], [384, 256]);
  });

  it('shows the options example at a portrait of the model’s own size', () => {
    assert.match(optionsExample(composeSettings()), /--size 512x768/);
    const tiny = composeSettings({ defaults: { width: 256, height: 256 } });
    assert.match(optionsExample(tiny), /--size 256x384/);
    assert.match(JSON.stringify(helpReply(tiny)), /--size 256x384/);
    assert.ok(parseCompose(optionsExample(tiny), tiny).ok);
  });

  it('says in the help what the default is', () => {
    const text = (settings: ReturnType<typeof composeSettings>) => JSON.stringify(helpReply(settings));
    assert.match(text(composeSettings()), /default the model's own size, 512x512 for SD 1\.5/);
    assert.match(text(composeSettings({ defaults: { width: 256, height: 256 } })), /default 256x256/);
  });

  it('offers sizes near the model’s own area first in autocomplete', () => {
    const limits = { minSide: 256, maxSide: 1024 };
    const tiny = sizeChoices('', limits, 256).map((c) => c.value);
    assert.deepEqual(tiny.slice(0, 3), ['256x256', '256x384', '384x256']);
    const sd15 = sizeChoices('', limits, 512).map((c) => c.value);
    assert.equal(sd15[0], '512x512');
    assert.ok(sd15.slice(0, 9).includes('384x576'), 'the portrait nearest 512² in area');
    assert.equal(new Set(sd15).size, sd15.length, 'no size offered twice');
  });
});
