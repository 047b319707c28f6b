// commands/remix: the command a picture carries comes back, parsed by the /compose grammar only.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { encodePng, readRecipe, recipeFromSpec, recipeText, withPngText } from '../../bot/render/index.ts';
import { composeSettings, DEFAULT_SAMPLING, parseCompose } from '../../commands/compose/index.ts';
import { recipeCommand, remixReply } from '../../commands/remix.ts';
import { compositionSpec } from '../../engine/clora/spec.ts';

// The library remix looks LoRAs up in, and the bot's own recipe reader.
const library = (names: string[]) => ({
  library: {
    get: (name: string) => (names.some((n) => n.toLowerCase() === name.toLowerCase()) ? { name } : undefined),
  },
  readRecipe,
});

async function pictureWith(command: string) {
  const spec = compositionSpec({
    ...DEFAULT_SAMPLING,
    prompt: 'a cat and a penguin in a house',
    subjects: [
      { word: 'cat', lora: { name: 'tabby', path: '/t' }, weight: 1, triggers: [] },
      { word: 'penguin', lora: { name: 'plush', path: '/p' }, weight: 1, triggers: [] },
    ],
    seed: 7,
  });
  const recipe = recipeFromSpec(spec, {
    command,
    model: { name: 'm' },
    loraSha256: new Map([['/p', 'abcdef0123456789'.padEnd(64, '0')]]),
  });
  return encodePng({ width: 4, height: 4, data: new Uint8Array(48) }, recipeText(recipe));
}

describe('recipeCommand', () => {
  it('spells out every setting so a bot with other defaults makes the same picture', () => {
    const parsed = parseCompose('cat:<tabby> penguin:<plush> in a house --seed 9 --size 512x512');
    assert.ok(parsed.ok);
    const command = recipeCommand(parsed.request);
    assert.equal(
      command,
      '/compose cat:<tabby> penguin:<plush> in a house --seed 9 --steps 50 --size 512x512 --cfg 7.5 --sampler ddim --method clora',
    );
    const elsewhere = composeSettings({ defaults: { steps: 20, cfg: 4, sampler: 'euler', method: 'merge' } });
    const back = parseCompose(command.replace('/compose ', ''), elsewhere);
    assert.ok(back.ok);
    assert.deepEqual(back.request, parsed.request);
  });

  it("keeps the leading list of bindings for a size this bot's limits allow and the defaults do not", () => {
    const small = composeSettings({ limits: { minSide: 64, maxSide: 128 } });
    const parsed = parseCompose(
      'cat:<tabby> penguin:<plush> in a house --seed 7 --size 128x128 --masks',
      small,
    );
    assert.ok(parsed.ok);
    assert.equal(
      recipeCommand(parsed.request),
      '/compose cat:<tabby> penguin:<plush> in a house --seed 7 --steps 50 --size 128x128 --cfg 7.5 --sampler ddim --method clora',
    );
  });
});

describe('remixReply', () => {
  it('gives the command back to edit, naming LoRAs the library lacks with their hash', async () => {
    const png = await pictureWith('/compose cat:<tabby> penguin:<plush> in a house --seed 7 --steps 20');
    const all = remixReply(png, library(['tabby', 'plush']));
    assert.equal(all.prefill, 'cat:<tabby> penguin:<plush> in a house --seed 7 --steps 20');
    assert.match(
      all.reply.card?.description ?? '',
      /```\n\/compose cat:<tabby> penguin:<plush> in a house --seed 7/,
    );
    assert.doesNotMatch(all.reply.card?.description ?? '', /lacks/);

    const some = remixReply(png, library(['tabby']));
    assert.equal(some.prefill, 'cat:<tabby> penguin:<plush> in a house --seed 7 --steps 20');
    assert.match(some.reply.card?.description ?? '', /lacks 'plush' \(AutoV2 abcdef0123\)/);
    assert.equal(some.reply.card?.tone, 'warning');
  });

  it('refuses foreign, bare and non-PNG files with a message, and commands the grammar cannot read', async () => {
    const bare = await encodePng({ width: 4, height: 4, data: new Uint8Array(48) });
    const foreign = withPngText(bare, [{ keyword: 'parameters', text: 'a cat\nSteps: 20, Seed: 1' }]);
    for (const [bytes, pattern] of [
      [bare, /carries no recipe/],
      [foreign, /made by another tool/],
      [Buffer.from('\xff\xd8\xff\xe0 a jpeg', 'latin1'), /not a PNG/],
    ] as const) {
      const out = remixReply(bytes, library(['tabby']));
      assert.equal(out.prefill, undefined);
      assert.equal(out.reply.ephemeral, true);
      assert.match(out.reply.text ?? JSON.stringify(out.reply), pattern);
    }
    const bad = remixReply(await pictureWith('/compose cat:<tabby> --steps 9999'), library(['tabby']));
    assert.equal(bad.prefill, undefined);
    assert.match(JSON.stringify(bad.reply), /no longer reads as \/compose/);
  });
});
