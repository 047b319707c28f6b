// bot/render recipes: A1111 parameters and our command written into PNG text chunks (and EXIF for the
// lossy fallbacks), read back by sharp, by exifr (an independent reader) and by our own reader.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { crc32, deflateSync } from 'node:zlib';
import exifr from 'exifr';
import sharp from 'sharp';
import { cachedSha256 } from '../../bot/engine-host/file-hash.ts';
import { compositionRecipe } from '../../bot/engine-host/recipe.ts';
import {
  a1111Parameters,
  encodeImage,
  encodePng,
  GENERATOR,
  readPngText,
  readRecipe,
  readUserComment,
  recipeFromSpec,
  recipeText,
  withPngText,
} from '../../bot/render/index.ts';
import { DEFAULT_SAMPLING } from '../../commands/compose/index.ts';
import { compositionSpec } from '../../engine/clora/spec.ts';

const SHA_TABBY = 'ab12cd34ef56'.padEnd(64, '0');
const SHA_PLUSH = '0123456789abcdef'.padEnd(64, '1');
const SHA_MODEL = 'FEDCBA9876'.padEnd(64, '2');

function exampleRecipe(prompt = 'a cat and a penguin in a café', negative = 'blurry, low quality') {
  const spec = compositionSpec({
    ...DEFAULT_SAMPLING,
    prompt,
    subjects: [
      { word: 'cat', lora: { name: 'tabby', path: '/l/tabby.safetensors' }, weight: 0.8, triggers: [] },
      { word: 'penguin', lora: { name: 'plush', path: '/l/plush.safetensors' }, weight: 1, triggers: [] },
    ],
    negative,
    seed: 42,
    steps: 20,
    cfg: 7,
    sampler: 'dpmpp_2m_karras',
  });
  return recipeFromSpec(spec, {
    command: `/compose ${prompt.replace('a cat and a penguin', 'cat:<tabby>@0.8 penguin:<plush>')} --seed 42`,
    model: { name: 'sd15.safetensors', sha256: SHA_MODEL },
    loraSha256: new Map([
      ['/l/tabby.safetensors', SHA_TABBY],
      ['/l/plush.safetensors', SHA_PLUSH],
    ]),
  });
}

function grey(width: number, height: number) {
  return { width, height, data: new Uint8Array(width * height * 3).fill(128) };
}

/** Chunk types of a PNG, in order. */
function chunkTypes(png: Uint8Array): string[] {
  const b = Buffer.from(png);
  const types: string[] = [];
  for (let at = 8; at < b.length; at += 12 + b.readUInt32BE(at))
    types.push(b.toString('latin1', at + 4, at + 8));
  return types;
}

/** The uncompressed iTXt entries, parsed here from the PNG specification rather than by the code under test. */
function itxtEntries(png: Uint8Array): Record<string, string> {
  const b = Buffer.from(png);
  const out: Record<string, string> = {};
  for (let at = 8; at < b.length; at += 12 + b.readUInt32BE(at)) {
    if (b.toString('latin1', at + 4, at + 8) !== 'iTXt') continue;
    const data = b.subarray(at + 8, at + 8 + b.readUInt32BE(at));
    const keywordEnd = data.indexOf(0);
    assert.deepEqual([...data.subarray(keywordEnd + 1, keywordEnd + 3)], [0, 0], 'uncompressed');
    const languageEnd = data.indexOf(0, keywordEnd + 3);
    const translatedEnd = data.indexOf(0, languageEnd + 1);
    out[data.toString('latin1', 0, keywordEnd)] = data.subarray(translatedEnd + 1).toString('utf8');
  }
  return out;
}

describe('A1111 parameters', () => {
  it('writes prompt, negative prompt and the settings line in A1111 order with AutoV2 hashes', () => {
    const text = a1111Parameters(exampleRecipe());
    const [prompt, negative, settings] = text.split('\n');
    assert.equal(prompt, 'a cat and a penguin in a café <lora:tabby:0.8> <lora:plush:1>');
    assert.equal(negative, 'Negative prompt: blurry, low quality');
    assert.equal(
      settings,
      'Steps: 20, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 42, Size: 512x512, Model hash: fedcba9876, ' +
        `Model: sd15.safetensors, Lora hashes: "tabby: ab12cd34ef, plush: 0123456789", Version: ${GENERATOR}`,
    );
    assert.match(GENERATOR, /^clora-bot \d+\.\d+\.\d+/);
  });

  it('leaves out an empty negative prompt and hashes it does not know', () => {
    const recipe = { ...exampleRecipe('a cat', ''), model: { name: 'folder' } };
    const lines = a1111Parameters(recipe).split('\n');
    assert.equal(lines.length, 2);
    assert.doesNotMatch(lines[1]!, /Model hash/);
    assert.match(lines[1]!, /Model: folder,/);
  });
});

describe('PNG text chunks', () => {
  it('are seen by sharp, exifr and our reader: tEXt for ASCII, iTXt beyond it', async () => {
    const recipe = exampleRecipe('a cat 猫 and a penguin 🐧 in a café');
    const png = await encodePng(grey(16, 16), recipeText(recipe));
    assert.deepEqual(chunkTypes(png).slice(0, 3), ['IHDR', 'iTXt', 'iTXt']);
    const latin = await encodePng(grey(16, 16), recipeText(exampleRecipe('a cat and a penguin in a house')));
    assert.deepEqual(chunkTypes(latin).slice(0, 3), ['IHDR', 'tEXt', 'tEXt']);

    for (const [bytes, r] of [
      [png, recipe],
      [latin, exampleRecipe('a cat and a penguin in a house')],
    ] as const) {
      const meta = await sharp(bytes).metadata();
      const fromSharp = Object.fromEntries((meta.comments ?? []).map((c) => [c.keyword, c.text]));
      assert.equal(fromSharp.parameters, a1111Parameters(r));
      // exifr reads tEXt only (A1111 itself writes iTXt for non-Latin-1 text); iTXt is parsed here.
      const independent =
        bytes === latin
          ? await exifr.parse(Buffer.from(bytes), { xmp: false, icc: false, iptc: false })
          : itxtEntries(bytes);
      assert.equal(independent.parameters, a1111Parameters(r));
      assert.equal(JSON.parse(independent['clora-bot']).command, r.command);
      const mine = readRecipe(bytes);
      assert.equal(mine.kind, 'recipe');
      assert.deepEqual(mine.kind === 'recipe' ? mine.recipe : undefined, JSON.parse(JSON.stringify(r)));
    }
    // The pixels are untouched.
    const { data } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
    assert.ok(data.every((v) => v === 128));
  });

  it('reads zTXt and compressed iTXt, skips chunks with a bad CRC, refuses what is not a PNG', async () => {
    const plain = await encodePng(grey(4, 4));
    const withText = withPngText(plain, [{ keyword: 'parameters', text: 'a cat\nSteps: 20' }]);
    const ztxt = Buffer.concat([Buffer.from('parameters\0\0', 'latin1'), deflateSync('from zTXt')]);
    const chunk = (type: string, data: Buffer) => {
      const out = Buffer.alloc(12 + data.length);
      out.writeUInt32BE(data.length, 0);
      out.write(type, 4, 'latin1');
      data.copy(out, 8);
      out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
      return out;
    };
    const itxt = Buffer.concat([
      Buffer.from('comment\0\x01\0\0\0', 'latin1'),
      deflateSync(Buffer.from('猫', 'utf8')),
    ]);
    const file = Buffer.concat([
      plain.subarray(0, 33),
      chunk('zTXt', ztxt),
      chunk('iTXt', itxt),
      plain.subarray(33),
    ]);
    assert.deepEqual(readPngText(file), [
      { keyword: 'parameters', text: 'from zTXt' },
      { keyword: 'comment', text: '猫' },
    ]);
    const broken = Buffer.from(withText);
    broken[33 + 10] ^= 0xff; // a byte of the text chunk's data, just after IHDR

    assert.deepEqual(readPngText(broken), []);
    assert.equal(readRecipe(withText).kind, 'foreign');
    assert.deepEqual(readRecipe(withText), { kind: 'foreign', parameters: 'a cat\nSteps: 20' });
    assert.deepEqual(readRecipe(plain), { kind: 'foreign' });
    assert.deepEqual(readRecipe(Buffer.from('GIF89a')), { kind: 'not-png' });
    assert.throws(() => withPngText(Buffer.from('nope'), []), /not a PNG/);
  });

  it('ignores our entry when its JSON is not a recipe of a known format', async () => {
    const png = withPngText(await encodePng(grey(4, 4)), [
      { keyword: 'clora-bot', text: '{"format":99,"command":"/compose x","loras":[]}' },
    ]);
    assert.equal(readRecipe(png).kind, 'foreign');
    const junk = withPngText(await encodePng(grey(4, 4)), [{ keyword: 'clora-bot', text: 'not json' }]);
    assert.equal(readRecipe(junk).kind, 'foreign');
  });
});

describe('recipes in the lossy fallbacks', () => {
  it('carry the A1111 text in EXIF UserComment, Unicode intact, within maxBytes', async () => {
    const recipe = exampleRecipe('a cat 猫 in a café 🐈');
    const noise = new Uint8Array(96 * 96 * 3).map((_, i) => (i * 7919) % 251);
    for (const prefer of ['webp', 'jpeg'] as const) {
      const budget = 200_000;
      const out = await encodeImage(noise, 96, 96, { maxBytes: budget, prefer, text: recipeText(recipe) });
      assert.equal(out.format, prefer);
      assert.ok(out.bytes.length <= budget);
      const meta = await sharp(out.bytes).metadata();
      assert.equal(meta.width, 96);
      assert.ok(meta.exif, `${prefer} has EXIF`);
      assert.equal(readUserComment(meta.exif!), a1111Parameters(recipe));
      if (prefer === 'webp') continue; // exifr reads no WebP
      const fromExifr = await exifr.parse(Buffer.from(out.bytes), {
        userComment: true,
        translateValues: false,
      });
      const comment = Buffer.from(fromExifr.userComment as Uint8Array);
      assert.equal(comment.subarray(0, 8).toString('latin1'), 'UNICODE\0');
      assert.equal(Buffer.from(comment.subarray(8)).swap16().toString('utf16le'), a1111Parameters(recipe));
    }
  });
});

describe('compositionRecipe', () => {
  it('hashes a single-file checkpoint (AutoV2) once per file version, and names a diffusers folder only', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'clora-recipe-'));
    try {
      const model = join(dir, 'model.safetensors');
      writeFileSync(model, 'pretend checkpoint bytes');
      const sha = createHash('sha256').update('pretend checkpoint bytes').digest('hex');
      const spec = compositionSpec({
        ...DEFAULT_SAMPLING,
        prompt: 'a cat',
        subjects: [{ word: 'cat', lora: { name: 'tabby', path: '/l/tabby' }, weight: 1, triggers: [] }],
      });
      const loadLora = () => ({ sha256: SHA_TABBY });
      const engine = { checkpoint: { source: model, layout: 'single-file' }, loadLora } as never;
      const recipe = await compositionRecipe(engine, spec, '/compose cat:<tabby> --seed 0');
      assert.deepEqual(recipe.model, { name: 'model.safetensors', hash: sha.slice(0, 10) });
      assert.deepEqual(recipe.loras, [{ name: 'tabby', subject: 'cat', weight: 1, hash: 'ab12cd34ef' }]);
      assert.equal(await cachedSha256(model), sha);
      // A changed file is hashed again.
      writeFileSync(model, 'other bytes, longer than before');
      assert.equal(
        await cachedSha256(model),
        createHash('sha256').update('other bytes, longer than before').digest('hex'),
      );

      const folder = { checkpoint: { source: dir, layout: 'diffusers' }, loadLora } as never;
      assert.equal((await compositionRecipe(folder, spec, 'x')).model.hash, undefined);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
