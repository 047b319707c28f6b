// The LoRA library and its two commands: scanning the fixture LoRAs, names and clashes,
// triggers, sidecars, previews, watching, search, paging past 25, uploads and removals,
// unusable files with their reasons, and the /loras and /lora replies.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, describe, it } from 'node:test';
import fc from 'fast-check';
import {
  type LibraryChange,
  LoraLibrary,
  type LoraLibraryOptions,
  slugify,
} from '../../bot/library/index.ts';
import { assignNames } from '../../bot/library/names.ts';
import { parseSidecar, plainText } from '../../bot/library/sidecar.ts';
import {
  decodeActionId,
  decodeLoraActionId,
  encodeActionId,
  encodeLoraActionId,
  type LoraAction,
} from '../../commands/actions.ts';
import { parseCompose, resolveLoras } from '../../commands/compose/index.ts';
import { formatBytes, loraCardReply, lorasReply, tryItPrefill } from '../../commands/loras.ts';
import { checkReply, type MessageReply, REPLY_LIMITS } from '../../commands/reply.ts';
import { bytesOf } from '../../engine/graph/dtype.ts';
import { readLora } from '../../engine/lora/file.ts';
import { openCheckpoint } from '../../engine/weights/checkpoint.ts';
import { encodeSafetensors, type TensorToWrite } from '../../engine/weights/safetensors.ts';
import { fixtureDir } from '../fixtures.ts';

const fx = fixtureDir();
const fixtureLoras = join(fx, 'loras');
const checkpoint = openCheckpoint(join(fx, 'model'));
const base = { unet: checkpoint.unet.weights, textEncoder: checkpoint.textEncoder.weights };

const FIXTURES = [
  'lora_i_kohya_unet_te.safetensors',
  'lora_ii_kohya_unet_attn_ff.safetensors',
  'lora_iii_peft_unet_te.safetensors',
  'lora_iv_kohya_locon_unet.safetensors',
];

const root = mkdtempSync(join(tmpdir(), 'clora-library-'));
after(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;

/** A fresh library folder holding copies of the named fixture LoRAs. */
function folder(...fixtures: string[]): string {
  const dir = join(root, `lib${dirs++}`);
  mkdirSync(dir);
  for (const f of fixtures) copyFileSync(join(fixtureLoras, f), join(dir, f));
  return dir;
}

const open: LoraLibrary[] = [];
afterEach(() => {
  for (const lib of open.splice(0)) lib.close();
});

async function library(
  dir: string,
  options: LoraLibraryOptions & { noBase?: boolean } = {},
): Promise<LoraLibrary> {
  const lib = await LoraLibrary.open(dir, options.noBase ? undefined : base, {
    watch: false,
    rescanIntervalMs: 0,
    ...options,
  });
  open.push(lib);
  return lib;
}

// The 32×32 attn1.to_q of the tiny model's first down block.
const Q_KOHYA = 'lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q';
const Q_WIDTH = base.unet.shape('down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.weight')[1];

function f32(shape: number[], fill: (i: number) => number): Uint8Array {
  const n = shape.reduce((a, b) => a * b, 1);
  return bytesOf(Float32Array.from({ length: n }, (_, i) => fill(i)));
}

function tensor(name: string, shape: number[], fill: (i: number) => number = (i) => ((i % 7) - 3) / 10) {
  return { name, dtype: 'F32', shape, data: f32(shape, fill) } satisfies TensorToWrite;
}

/** A one-module kohya LoRA; `width` other than the layer's makes it a wrong-shaped one. */
function tinyLora(rank = 2, metadata?: Record<string, string>, width = Q_WIDTH): Uint8Array {
  return encodeSafetensors(
    [
      tensor(`${Q_KOHYA}.lora_down.weight`, [rank, width]),
      tensor(`${Q_KOHYA}.lora_up.weight`, [Q_WIDTH, rank]),
      tensor(`${Q_KOHYA}.alpha`, [], () => rank),
    ],
    metadata,
  );
}

function tagMetadata(tags: Record<string, number>): Record<string, string> {
  return { ss_network_module: 'networks.lora', ss_tag_frequency: JSON.stringify({ '10_train': tags }) };
}

const PNG = Uint8Array.from([
  0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52,
]);

/** The next 'change' event `accept` likes, or a failure after `ms`. */
function nextChange(
  lib: LoraLibrary,
  accept: (c: LibraryChange) => boolean,
  ms = 5000,
): Promise<LibraryChange> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      lib.off('change', listen);
      reject(new Error(`no matching change event within ${ms} ms`));
    }, ms);
    const listen = (c: LibraryChange) => {
      if (!accept(c)) return;
      clearTimeout(timer);
      lib.off('change', listen);
      resolve(c);
    };
    lib.on('change', listen);
  });
}

function fieldOf(reply: MessageReply, name: string): string {
  const field = reply.card?.fields.find((f) => f.name === name);
  assert.ok(field, `card has a '${name}' field: ${reply.card?.fields.map((f) => f.name)}`);
  return field.value;
}

describe('scanning the fixture LoRAs', () => {
  it('lists every file by a slug, with what readLora finds in it once checked', async () => {
    const dir = folder(...FIXTURES);
    const lib = await library(dir);
    // Right after open only headers are read; the full check runs in the background.
    assert.deepEqual(
      lib.list().map((e) => e.check.state),
      FIXTURES.map(() => 'pending'),
    );
    await lib.settled();
    assert.deepEqual(lib.names(), [
      'lora-i-kohya-unet-te',
      'lora-ii-kohya-unet-attn-ff',
      'lora-iii-peft-unet-te',
      'lora-iv-kohya-locon-unet',
    ]);
    for (const file of FIXTURES) {
      const path = join(dir, file);
      const lora = readLora(path, base);
      const entry = lib.list().find((e) => e.file === file);
      assert.ok(entry, file);
      assert.equal(entry.ref.path, path);
      assert.equal(entry.ref.name, entry.name);
      assert.equal(entry.displayName, file.replace('.safetensors', ''));
      assert.equal(entry.sizeBytes, statSync(path).size);
      assert.equal(entry.rank, lora.rank);
      assert.equal(entry.sha256, lora.sha256);
      assert.ok(entry.usable, `${file} is usable`);
      assert.equal(entry.check.state, 'ok');
      if (entry.check.state === 'ok') {
        assert.equal(entry.check.format, lora.format);
        assert.equal(entry.check.layers, lora.modules.length);
        assert.equal(entry.check.unmatched, 0);
      }
      // Triggers: the most frequent ss_tag_frequency tag, as readLora ranks them; else the name.
      if (lora.triggerCandidates.length > 0) {
        assert.deepEqual(entry.triggers, [lora.triggerCandidates[0]]);
        assert.equal(entry.triggerSource, 'metadata');
        assert.deepEqual(entry.tags.slice(0, lora.triggerCandidates.length), lora.triggerCandidates);
      } else {
        assert.deepEqual(entry.triggers, [entry.displayName]);
        assert.equal(entry.triggerSource, 'name');
      }
      for (const key of Object.keys(entry.metadata)) assert.match(key, /^(ss_|modelspec\.)/);
    }
    const i = lib.get('lora-i-kohya-unet-te')!;
    assert.deepEqual(i.triggers, ['sks']);
    assert.deepEqual(i.tags, ['sks', 'cat', 'penguin']);
    assert.equal(i.baseModelClaim, 'sd_v1');
    assert.equal(i.metadata.ss_network_dim, '4');
    assert.equal(lib.get('lora-iii-peft-unet-te')!.metadata.format, undefined);
  });

  it('without a model lists files from their headers, unchecked, and still hashes them', async () => {
    const dir = folder(...FIXTURES);
    writeFileSync(
      join(dir, 'xl.safetensors'),
      encodeSafetensors([tensor('lora_te1_text_model_x.lora_down.weight', [2, 8])]),
    );
    const lib = await library(dir, { noBase: true });
    await lib.settled();
    const fixturesListed = lib.list().filter((e) => e.file !== 'xl.safetensors');
    assert.equal(fixturesListed.length, 4);
    for (const e of fixturesListed) {
      assert.equal(e.check.state, 'unchecked');
      assert.ok(e.usable, `${e.name} is usable`);
      const lora = readLora(e.ref.path, base);
      assert.equal(e.rank, lora.rank);
      assert.equal(e.sha256, lora.sha256);
    }
    // Key names alone rule out an SDXL file, model or not.
    const xl = lib.get('xl')!;
    assert.equal(xl.usable, false);
    assert.equal(xl.check.state === 'unusable' && /SDXL/.test(xl.check.reason), true);
    assert.ok(!lib.names().includes('xl'), "!lib.names().includes('xl')");

    // Once a model is configured every file is checked against it.
    lib.setBase(base);
    await lib.settled();
    assert.ok(
      fixturesListed.every((e) => lib.get(e.name)!.check.state === 'ok'),
      'every fixture checks out once the model is set',
    );
  });

  it('finds a LoRA by any case, with < >, or by its display name', async () => {
    const lib = await library(folder(FIXTURES[0]));
    assert.equal(lib.get('LORA-I-KOHYA-UNET-TE')?.file, FIXTURES[0]);
    assert.equal(lib.get('<lora-i-kohya-unet-te>')?.file, FIXTURES[0]);
    assert.equal(lib.get('lora_i_kohya_unet_te')?.file, FIXTURES[0]);
    assert.equal(lib.get('lora-i'), undefined);
    assert.deepEqual(lib.closest('lora-i-kohya-unet-tee'), ['lora-i-kohya-unet-te']);
  });
});

describe('names', () => {
  it('slugs are lowercase a–z 0–9 and single hyphens', () => {
    assert.equal(slugify('Tabby Cat (v2.0)'), 'tabby-cat-v2-0');
    assert.equal(slugify('  Café__Déjà vu!! '), 'cafe-deja-vu');
    assert.equal(slugify('猫'), '');
    assert.equal(slugify(`${'a'.repeat(59)}-b`), 'a'.repeat(59));
    fc.assert(
      fc.property(fc.string({ maxLength: 80 }), (text) => {
        const slug = slugify(text);
        assert.ok(slug === '' || /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/.test(slug), slug);
        assert.ok(!slug.includes('--') && slug.length <= 60, "!slug.includes('--') && slug.length <= 60");
        assert.equal(slugify(slug), slug);
      }),
    );
  });

  it('resolves clashes by file order, keeps names while running, and ranks safetensors over pickles', async () => {
    const dir = folder();
    writeFileSync(join(dir, 'Tabby Cat.safetensors'), tinyLora());
    writeFileSync(join(dir, 'tabby_cat.safetensors'), tinyLora());
    writeFileSync(join(dir, 'tabby-cat-2.safetensors'), tinyLora());
    const lib = await library(dir);
    const nameOf = (file: string) => lib.list().find((e) => e.file === file)?.name;
    assert.equal(nameOf('Tabby Cat.safetensors'), 'tabby-cat');
    assert.equal(nameOf('tabby-cat-2.safetensors'), 'tabby-cat-2');
    assert.equal(nameOf('tabby_cat.safetensors'), 'tabby-cat-3');

    // A newcomer that sorts first takes no name already given.
    writeFileSync(join(dir, 'TABBY CAT.safetensors'), tinyLora());
    await lib.rescan();
    assert.equal(nameOf('Tabby Cat.safetensors'), 'tabby-cat');
    assert.equal(nameOf('tabby_cat.safetensors'), 'tabby-cat-3');
    assert.equal(nameOf('TABBY CAT.safetensors'), 'tabby-cat-4');
    // After a restart the order of files decides.
    const again = await library(dir);
    assert.equal(again.list().find((e) => e.file === 'TABBY CAT.safetensors')?.name, 'tabby-cat');

    const twins = folder();
    writeFileSync(join(twins, 'a-owl.ckpt'), 'not really a pickle');
    writeFileSync(join(twins, 'a-owl.safetensors'), tinyLora());
    const t = await library(twins);
    assert.equal(t.get('a-owl')?.file, 'a-owl.safetensors');
    const pickled = t.get('a-owl-2')!;
    assert.equal(pickled.file, 'a-owl.ckpt');
    assert.equal(
      pickled.check.state === 'unusable' && /pickled.*convert it to \.safetensors/.test(pickled.check.reason),
      true,
    );
  });

  it('assignNames is deterministic and never gives one name twice', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(
          fc.record({
            file: fc.string({ minLength: 1, maxLength: 6 }),
            wanted: fc.constantFrom('a', 'a-2', 'b', `${'x'.repeat(60)}`),
            rank: fc.constantFrom(0, 1),
          }),
          {
            selector: (c) => c.file,
            maxLength: 12,
          },
        ),
        (claims) => {
          const names = assignNames(claims);
          assert.equal(new Set(names.values()).size, claims.length);
          assert.deepEqual([...assignNames([...claims].reverse())].sort(), [...names].sort());
          for (const name of names.values()) assert.ok(name.length <= 60, name);
        },
      ),
    );
  });
});

describe('sidecars and previews', () => {
  it('a sidecar names the LoRA and gives its triggers, description, source, licence and base model', async () => {
    const dir = folder(FIXTURES[0]);
    writeFileSync(
      join(dir, 'lora_i_kohya_unet_te.json'),
      JSON.stringify({
        name: 'Tabby Cat',
        trainedWords: ['tabby', 'orange cat'],
        description: '<p>A <b>striped</b> cat &amp; friends</p>',
        modelId: 4242,
        license: 'CreativeML OpenRAIL-M',
        baseModel: 'SD 1.5',
      }),
    );
    const lib = await library(dir);
    const e = lib.get('tabby-cat')!;
    assert.equal(e.displayName, 'Tabby Cat');
    assert.deepEqual(e.triggers, ['tabby', 'orange cat']);
    assert.equal(e.triggerSource, 'sidecar');
    assert.equal(e.description, 'A striped cat & friends');
    assert.equal(e.source, 'https://civitai.com/models/4242');
    assert.equal(e.licence, 'CreativeML OpenRAIL-M');
    assert.equal(e.baseModelClaim, 'SD 1.5');
    assert.deepEqual(e.notes, []);
  });

  it('merges .civitai.info under .json, and a broken sidecar is a note, not a broken LoRA', async () => {
    const dir = folder(FIXTURES[0], FIXTURES[1]);
    writeFileSync(
      join(dir, 'lora_i_kohya_unet_te.civitai.info'),
      JSON.stringify({ name: 'v1.0', model: { name: 'Plush Penguin' }, trainedWords: ['plsh'] }),
    );
    writeFileSync(
      join(dir, 'lora_i_kohya_unet_te.json'),
      JSON.stringify({ 'activation text': 'plush, toy' }),
    );
    writeFileSync(join(dir, 'lora_ii_kohya_unet_attn_ff.json'), '{ "name": ');
    const lib = await library(dir);
    await lib.settled();
    const penguin = lib.get('plush-penguin')!;
    assert.deepEqual(penguin.triggers, ['plush', 'toy']);
    const broken = lib.get('lora-ii-kohya-unet-attn-ff')!;
    assert.ok(broken.usable, 'a bad sidecar leaves the LoRA usable');
    assert.deepEqual(broken.triggers, ['ohwx']);
    assert.match(broken.notes.join(), /lora_ii_kohya_unet_attn_ff\.json is not valid JSON/);
  });

  it('parses sidecar shapes and strips HTML', () => {
    assert.deepEqual(parseSidecar('[1]'), { problem: 'is not a JSON object; fix or delete it' });
    const r = parseSidecar(
      JSON.stringify({ triggers: 'a,  b ,a,', url: 'https://x.test/l', tags: ['t', 3] }),
    );
    assert.ok('sidecar' in r, 'parses');
    assert.deepEqual(r.sidecar, { triggers: ['a', 'b'], source: 'https://x.test/l', tags: ['t'] });
    assert.equal(plainText('<p>one<br>two&nbsp;&#x41;&#66;</p><i>x</i>'), 'one\ntwo AB\nx');
  });

  it('finds a preview beside the file or in modelspec.thumbnail, and checks what it is', async () => {
    const dir = folder(FIXTURES[0], FIXTURES[1], FIXTURES[2]);
    writeFileSync(join(dir, 'lora_i_kohya_unet_te.preview.png'), PNG);
    writeFileSync(join(dir, 'lora_ii_kohya_unet_attn_ff.jpg'), 'this is text, not a JPEG');
    const thumb = `data:image/png;base64,${Buffer.from(PNG).toString('base64')}`;
    writeFileSync(join(dir, 'thumbed.safetensors'), tinyLora(2, { 'modelspec.thumbnail': thumb }));
    const lib = await library(dir);

    const p = await lib.preview('lora-i-kohya-unet-te');
    assert.ok(p?.ok, 'the preview file is read');
    assert.deepEqual(p.image.data, PNG);
    assert.equal(p.image.mime, 'image/png');
    assert.equal(p.image.filename, 'lora-i-kohya-unet-te-preview.png');
    const big = await lib.preview('lora-i-kohya-unet-te', 8);
    assert.ok(big && !big.ok && /over the/.test(big.problem), 'a preview over the limit is refused');
    const fake = await lib.preview('lora-ii-kohya-unet-attn-ff');
    assert.ok(
      fake && !fake.ok && /not a PNG, JPEG, WebP or GIF/.test(fake.problem),
      'a text file is no picture',
    );
    const fromMeta = await lib.preview('thumbed');
    assert.ok(fromMeta?.ok, 'the metadata thumbnail is read');
    assert.deepEqual(fromMeta.image.data, PNG);
    assert.equal(await lib.preview('lora-iii-peft-unet-te'), undefined);
  });
});

describe('watching the folder', () => {
  it('picks up an added and a removed file without a restart', async () => {
    const dir = folder(FIXTURES[0]);
    const lib = await library(dir, { watch: true, debounceMs: 20 });
    const added = nextChange(lib, (c) => c.added.includes('lora-ii-kohya-unet-attn-ff'));
    copyFileSync(join(fixtureLoras, FIXTURES[1]), join(dir, FIXTURES[1]));
    await added;
    assert.ok(lib.get('lora-ii-kohya-unet-attn-ff'), "lib.get('lora-ii-kohya-unet-attn-ff')");
    const removed = nextChange(lib, (c) => c.removed.includes('lora-i-kohya-unet-te'));
    unlinkSync(join(dir, FIXTURES[0]));
    await removed;
    assert.equal(lib.get('lora-i-kohya-unet-te'), undefined);
    await lib.settled();
    assert.deepEqual(lib.names(), ['lora-ii-kohya-unet-attn-ff']);
  });

  it('a periodic rescan finds changes when watching is off, and a changed file is checked again', async () => {
    const dir = folder();
    writeFileSync(join(dir, 'owl.safetensors'), tinyLora(2));
    const lib = await library(dir, { rescanIntervalMs: 30 });
    await lib.settled();
    assert.equal(lib.get('owl')?.rank, 2);
    writeFileSync(join(dir, 'owl.safetensors'), tinyLora(3, undefined, Q_WIDTH + 8));
    await nextChange(lib, (c) => c.changed.includes('owl'));
    await lib.settled();
    const owl = lib.get('owl')!;
    assert.equal(owl.rank, 3);
    assert.equal(owl.usable, false, 'the new file has the wrong shapes');
  });
});

describe('search', () => {
  async function zoo(): Promise<LoraLibrary> {
    const dir = folder();
    const add = (file: string, tags: Record<string, number>, sidecar?: object) => {
      writeFileSync(join(dir, `${file}.safetensors`), tinyLora(2, tagMetadata(tags)));
      if (sidecar) writeFileSync(join(dir, `${file}.json`), JSON.stringify(sidecar));
    };
    add('penguin-plush', { plsh: 9, penguin: 5, 'plush toy': 2 });
    add('tabby', { tbby: 9, cat: 8, orange: 3 });
    add('cat-ears', { ears: 4 });
    add('barn-owl', { owl: 9, bird: 4 });
    add('watercolor', { painting: 3 }, { triggers: ['wtrclr style'] });
    add('catgirl', { nekomimi: 5, cat: 2 });
    writeFileSync(join(dir, 'cat-broken.safetensors'), 'garbage');
    return library(dir);
  }

  it('ranks exact names, then triggers, name prefixes, name words, tags, then typos', async () => {
    const lib = await zoo();
    const names = (q: string) => lib.search(q).map((e) => e.name);
    assert.deepEqual(names('tabby'), ['tabby']);
    assert.deepEqual(names('Barn Owl'), ['barn-owl']);
    assert.deepEqual(names('tbby'), ['tabby']);
    // name prefix (usable first), then the tag
    assert.deepEqual(names('cat'), ['cat-ears', 'catgirl', 'cat-broken', 'tabby']);
    assert.deepEqual(names('wtrclr style'), ['watercolor']);
    assert.deepEqual(names('painting'), ['watercolor']);
    assert.deepEqual(names('owl'), ['barn-owl']);
    assert.deepEqual(names('plush toy'), ['penguin-plush']);
    assert.equal(names('pengiun')[0], 'penguin-plush');
    assert.equal(names('watercolour')[0], 'watercolor');
    assert.deepEqual(names('zzzzzz'), []);
    assert.equal(lib.search('').length, lib.list().length);
  });
});

describe('unusable files', () => {
  it('stay listed with the reason, and are never offered to /compose', async () => {
    const dir = folder(FIXTURES[0]);
    const write = (file: string, bytes: Uint8Array | string) => writeFileSync(join(dir, file), bytes);
    write('xl.safetensors', encodeSafetensors([tensor('lora_te2_text_model_q.lora_down.weight', [2, 8])]));
    write('loha.safetensors', encodeSafetensors([tensor(`${Q_KOHYA}.hada_w1_a`, [2, 2])]));
    write('sd2.safetensors', tinyLora(2, { ss_base_model_version: 'sd_v2' }, Q_WIDTH * 3));
    write('garbage.safetensors', 'definitely not safetensors');
    write('cut.safetensors', tinyLora().subarray(0, 100));
    write('zip.safetensors', Uint8Array.from([0x50, 0x4b, 0x03, 0x04, 1, 2, 3, 4, 5, 6]));
    write('embedding.safetensors', encodeSafetensors([tensor('emb_params', [2, 8])]));
    write('old.ckpt', 'pickle');
    const lib = await library(dir);
    await lib.settled();
    const expected: Record<string, RegExp> = {
      xl: /SDXL/,
      loha: /LoHa/,
      sd2: /different base model.*sd_v2/,
      garbage: /not safetensors|corrupt/,
      cut: /truncated/,
      zip: /PyTorch \(zip\/pickle\)/,
      embedding: /textual-inversion embedding/,
      old: /pickled PyTorch file/,
    };
    for (const [name, reason] of Object.entries(expected)) {
      const e = lib.get(name);
      assert.ok(e, `${name} is listed`);
      assert.equal(e.usable, false, name);
      assert.ok(
        e.check.state === 'unusable' && reason.test(e.check.reason),
        `${name}: ${JSON.stringify(e.check)}`,
      );
      assert.ok(!lib.names().includes(name), name);
      const card = await loraCardReply(lib, name);
      assert.match(fieldOf(card, 'Why it cannot be used'), reason);
      assert.equal(card.card?.tone, 'danger');
      const ids = (card.rows ?? []).flatMap((r) => (r.kind === 'buttons' ? r.buttons.map((b) => b.id) : []));
      assert.ok(!ids.some((id) => id.startsWith('lora-try:')), 'no Try it for an unusable LoRA');
    }
    assert.deepEqual(lib.names(), ['lora-i-kohya-unet-te']);

    // The /compose parser resolves library names and refuses unusable ones.
    const parse = (text: string) => {
      const p = parseCompose(text);
      assert.ok(p.ok, `${text} parses`);
      return resolveLoras(p.request, lib, p.source);
    };
    assert.ok(parse('cat:<LORA-I-KOHYA-UNET-TE> in a house').ok, 'a library name resolves in any case');
    const typo = parse('cat:<lora-i-kohya-unet-tee> in a house');
    assert.ok(
      !typo.ok && /did you mean 'lora-i-kohya-unet-te'/.test(typo.error.message),
      'a typo gets the closest name',
    );
    assert.ok(!parse('cat:<xl> in a house').ok, 'an unusable LoRA does not resolve');
  });
});

describe('refused files are logged for the operator', () => {
  it('once each, with the reason: pipes, folders, dangling links, non-safetensors, broken files', async () => {
    const dir = folder(FIXTURES[0]);
    execFileSync('mkfifo', [join(dir, 'pipe.safetensors')]);
    mkdirSync(join(dir, 'boxed.safetensors'));
    mkdirSync(join(dir, 'more-loras'));
    symlinkSync(join(dir, 'nowhere.safetensors'), join(dir, 'gone.safetensors'));
    symlinkSync(join(dir, 'more-loras'), join(dir, 'linked.safetensors'));
    writeFileSync(join(dir, 'garbage.safetensors'), 'definitely not safetensors');
    writeFileSync(join(dir, 'cut.safetensors'), tinyLora().subarray(0, 100));
    writeFileSync(join(dir, 'notes.txt'), 'not a LoRA and not claimed to be one');
    const warnings: string[] = [];
    const lib = await library(dir, { onWarning: (m) => warnings.push(m) });
    await lib.settled();
    await lib.rescan();
    await lib.rescan();
    const expected: Record<string, RegExp> = {
      'pipe.safetensors': /is a named pipe \(FIFO\), not a file/,
      'boxed.safetensors': /is a folder; sub-folders are not read/,
      'more-loras': /is a folder; sub-folders are not read/,
      'gone.safetensors': /is a link to nothing/,
      'linked.safetensors': /is a link to a folder/,
      'garbage.safetensors': /not safetensors|corrupt/,
      'cut.safetensors': /truncated/,
    };
    for (const [file, why] of Object.entries(expected)) {
      const lines = warnings.filter((w) => w.includes(` ${file} `));
      assert.equal(lines.length, 1, `${file} logged once: ${JSON.stringify(warnings)}`);
      assert.match(lines[0], why);
    }
    assert.equal(warnings.length, Object.keys(expected).length, JSON.stringify(warnings));
    assert.deepEqual(lib.names(), ['lora-i-kohya-unet-te']);

    // Fixed, then broken again: logged again.
    writeFileSync(join(dir, 'cut.safetensors'), tinyLora());
    await lib.rescan();
    await lib.settled();
    writeFileSync(join(dir, 'cut.safetensors'), 'broken again');
    await lib.rescan();
    assert.equal(warnings.filter((w) => w.includes(' cut.safetensors ')).length, 2);
  });
});

describe('add and remove', () => {
  const fixtureBytes = () => new Uint8Array(readFileSync(join(fixtureLoras, FIXTURES[0])));
  const leftovers = (dir: string) => readdirSync(dir).filter((f) => f.startsWith('.'));

  it('adds a valid LoRA under its slug, at once usable, and refuses to overwrite it unless asked', async () => {
    const dir = folder();
    const lib = await library(dir);
    const changes: LibraryChange[] = [];
    lib.on('change', (c) => changes.push(c));
    const added = await lib.add('Striped Cat.safetensors', fixtureBytes());
    assert.ok(added.ok, !added.ok ? added.message : '');
    assert.equal(added.entry.name, 'striped-cat');
    assert.equal(added.entry.file, 'striped-cat.safetensors');
    assert.equal(added.entry.check.state, 'ok');
    assert.equal(added.replaced, false);
    assert.deepEqual(lib.names(), ['striped-cat']);
    assert.ok(
      changes.some((c) => c.added.includes('striped-cat')),
      'listeners hear of the new LoRA',
    );
    assert.deepEqual(readFileSync(join(dir, 'striped-cat.safetensors')), Buffer.from(fixtureBytes()));

    const clash = await lib.add('striped cat', tinyLora());
    assert.ok(!clash.ok, 'a second striped-cat is refused');
    assert.match(clash.message, /a LoRA named 'striped-cat' already exists/);
    assert.deepEqual(readFileSync(join(dir, 'striped-cat.safetensors')), Buffer.from(fixtureBytes()));

    const replaced = await lib.add('striped-cat', tinyLora(3), { replace: true });
    assert.ok(replaced.ok, 'replacing when asked works');
    assert.equal(replaced.replaced, true);
    assert.equal(lib.get('striped-cat')?.rank, 3);
    assert.deepEqual(leftovers(dir), []);
  });

  it('refuses wrong shapes, non-safetensors, other bases, bad names, empty and oversized files', async () => {
    const dir = folder();
    writeFileSync(join(dir, 'taken.safetensors'), 'x');
    const lib = await library(dir, { maxAddBytes: 64 * 1024 });
    const refusals: [string, Uint8Array, RegExp][] = [
      ['wide', tinyLora(2, undefined, Q_WIDTH * 2), /'wide' was not added: .*different base model/],
      [
        'text',
        new TextEncoder().encode('hello, I am not a LoRA at all'),
        /'text' was not added: .*not safetensors|corrupt/,
      ],
      ['zipped', Uint8Array.from([0x50, 0x4b, 0x03, 0x04, 0, 0, 0, 0, 0, 0]), /pickle/],
      ['xl', encodeSafetensors([tensor('lora_te1_text_model_q.lora_down.weight', [2, 8])]), /SDXL/],
      ['!!!', tinyLora(), /no letters or digits/],
      ['tabby.ckpt', tinyLora(), /pickled PyTorch file/],
      ['empty', new Uint8Array(0), /empty/],
      [
        'huge',
        new Uint8Array(64 * 1024 + 1),
        /the file is 65537 bytes; LoRAs up to 65536 bytes can be added/,
      ],
      ['taken', tinyLora(), /a LoRA named 'taken' already exists/],
    ];
    for (const [name, bytes, message] of refusals) {
      const r = await lib.add(name, bytes);
      assert.ok(!r.ok, name);
      assert.match(r.message, message, name);
    }
    assert.deepEqual(readdirSync(dir), ['taken.safetensors']);
    // Without a model nothing can be checked, so nothing is added.
    const bare = await library(folder(), { noBase: true });
    const r = await bare.add('tabby', tinyLora());
    assert.ok(!r.ok && /no SD 1.5 model is configured/.test(r.message), 'nothing is added without a model');
  });

  it('never overwrites a file of that name, even one listed under another name', async () => {
    const dir = folder();
    const lib = await library(dir);
    const mine = await lib.add('owl', tinyLora(2));
    assert.ok(mine.ok, 'owl is added');
    // A file of the same name appears behind the library's back, with a sidecar renaming it.
    writeFileSync(join(dir, 'hawk.safetensors'), tinyLora(4));
    writeFileSync(join(dir, 'hawk.json'), JSON.stringify({ name: 'Sky Hunter' }));
    const r = await lib.add('hawk', tinyLora(2));
    assert.ok(!r.ok, 'hawk.safetensors is not overwritten');
    assert.match(r.message, /hawk\.safetensors is already in the library/);
    assert.equal(lib.get('sky-hunter')?.rank, 4);
  });

  it('remove deletes the file with its sidecar and preview, and suggests names for a typo', async () => {
    const dir = folder(FIXTURES[0], FIXTURES[1]);
    writeFileSync(join(dir, 'lora_i_kohya_unet_te.json'), JSON.stringify({ name: 'Tabby' }));
    writeFileSync(join(dir, 'lora_i_kohya_unet_te.png'), PNG);
    writeFileSync(join(dir, 'lora_i_kohya_unet_te.preview.png'), PNG);
    const lib = await library(dir);
    const typo = await lib.remove('tabyb');
    assert.ok(!typo.ok && /did you mean 'tabby'/.test(typo.message), 'a typo gets the closest name');
    const r = await lib.remove('tabby');
    assert.ok(r.ok, 'tabby is removed');
    assert.deepEqual(readdirSync(dir), [FIXTURES[1]]);
    assert.equal(lib.get('tabby'), undefined);
  });
});

describe('/loras', () => {
  async function many(n: number): Promise<LoraLibrary> {
    const dir = folder();
    for (let i = 0; i < n; i++) {
      writeFileSync(
        join(dir, `lora-${String(i).padStart(2, '0')}.safetensors`),
        tinyLora(1 + (i % 3), tagMetadata({ [`tag${i}`]: 3 })),
      );
    }
    writeFileSync(join(dir, 'zz-broken.safetensors'), 'nope');
    const lib = await library(dir);
    await lib.settled();
    return lib;
  }

  it('pages through any number of LoRAs, 25 at a time, with ids that fit', async () => {
    const lib = await many(60);
    const seen: string[] = [];
    let reply = lorasReply(lib);
    for (let page = 0; ; page++) {
      assert.deepEqual(checkReply(reply), []);
      const card = reply.card!;
      const row = reply.rows?.[0];
      assert.ok(row?.kind === 'select', 'the first row is the select');
      const { select } = row;
      assert.ok(select.options.length <= REPLY_LIMITS.selectOptions, 'a page fits a select');
      assert.equal(card.fields.length, select.options.length);
      assert.equal(select.paging?.page, page);
      assert.equal(select.paging?.pageCount, 3);
      assert.match(card.description ?? '', /61 LoRAs, page \d of 3/);
      assert.deepEqual(decodeLoraActionId(select.id), { kind: 'lora-card' });
      seen.push(...select.options.map((o) => o.value));
      for (const f of card.fields.filter((f) => !f.name.startsWith('⚠️'))) {
        assert.match(f.value, /^triggers: `tag\d+` · rank [123] · (\d+ B|[\d.]+ KB)$/);
      }
      if (page > 0)
        assert.deepEqual(decodeLoraActionId(select.paging!.previousId!), {
          kind: 'loras',
          page: page - 1,
          query: '',
        });
      const next = select.paging?.nextId;
      if (next === null) break;
      const action = decodeLoraActionId(next!);
      assert.deepEqual(action, { kind: 'loras', page: page + 1, query: '' });
      reply = lorasReply(lib, { page: page + 1 });
    }
    assert.equal(seen.length, 61);
    assert.deepEqual(
      seen,
      lib.list().map((e) => e.name),
    );
    const broken = lorasReply(lib, { page: 99 });
    assert.equal(
      (broken.rows![0] as { select: { paging: { page: number } } }).select.paging.page,
      2,
      'clamped to the last page',
    );
    assert.match(broken.card?.fields.at(-1)?.name ?? '', /⚠️ zz-broken/);
    assert.match(broken.card?.footer ?? '', /cannot be used/);
  });

  it('searches, carrying the query in the page ids; a long query is cut to fit', async () => {
    const lib = await many(40);
    const reply = lorasReply(lib, { query: 'lora' });
    assert.deepEqual(checkReply(reply), []);
    const row = reply.rows![0];
    assert.ok(row.kind === 'select', 'the first row is the select');
    assert.deepEqual(decodeLoraActionId(row.select.paging!.nextId!), {
      kind: 'loras',
      page: 1,
      query: 'lora',
    });
    const one = lorasReply(lib, { query: 'tag7' });
    assert.equal(one.card?.fields[0].name, 'lora-07');
    const long = lorasReply(lib, { query: 'lora '.repeat(60) });
    assert.deepEqual(checkReply(long), []);
    const longRow = long.rows![0];
    assert.ok(longRow.kind === 'select', 'the first row is the select');
    const carried = decodeLoraActionId(longRow.select.paging!.nextId!);
    assert.ok(
      carried?.kind === 'loras' && carried.query.length <= 64 && carried.query.startsWith('lora lora'),
      'the page ids carry the query, cut to fit',
    );
    assert.equal(lorasReply(lib, { query: carried.query, page: 1 }).card?.fields.length, 15);
    const none = lorasReply(lib, { query: 'qqqqqqqqqq' });
    assert.equal(none.ephemeral, true);
    assert.match(none.text ?? '', /no LoRA matches 'qqqqqqqqqq'/);
  });

  it('says how to add LoRAs when there are none', async () => {
    const reply = lorasReply(await library(folder()));
    assert.match(reply.text ?? '', /No LoRAs yet/);
  });
});

describe('/lora <name>', () => {
  it('shows triggers, base model, rank, size, source, licence, hash and preview, with Try it', async () => {
    const dir = folder(FIXTURES[0]);
    writeFileSync(join(dir, 'lora_i_kohya_unet_te.preview.png'), PNG);
    writeFileSync(
      join(dir, 'lora_i_kohya_unet_te.json'),
      JSON.stringify({
        name: 'Tabby Cat',
        url: 'https://example.test/tabby',
        license: 'CC-BY-4.0',
        description: 'A cat.',
      }),
    );
    const lib = await library(dir);
    // Still pending: the card checks it first so it can say what it is.
    assert.equal(lib.get('tabby-cat')?.check.state, 'pending');
    const reply = await loraCardReply(lib, '<Tabby-Cat>');
    assert.deepEqual(checkReply(reply), []);
    assert.equal(reply.ephemeral, false);
    assert.equal(reply.card?.title, 'tabby-cat (Tabby Cat)');
    assert.equal(reply.card?.description, 'A cat.');
    assert.equal(fieldOf(reply, 'Use it'), '`subject:<tabby-cat>` in /compose');
    assert.equal(fieldOf(reply, 'Trigger words'), '`sks` (its most frequent training tag)');
    assert.equal(fieldOf(reply, 'Base model'), 'SD 1.x ✓ (all 204 layers fit)');
    assert.equal(fieldOf(reply, 'Rank'), '4, kohya LoRA');
    assert.equal(fieldOf(reply, 'Size'), formatBytes(statSync(join(dir, FIXTURES[0])).size));
    assert.equal(fieldOf(reply, 'Source'), 'https://example.test/tabby');
    assert.equal(fieldOf(reply, 'Licence'), 'CC-BY-4.0');
    assert.equal(
      fieldOf(reply, 'SHA-256'),
      `\`${readLora(join(dir, FIXTURES[0]), base).sha256.slice(0, 12)}\``,
    );
    assert.match(
      fieldOf(reply, 'Training'),
      /on tiny-sd15\.safetensors · 10 images · 256×256 · networks\.lora dim 4 alpha 2/,
    );
    assert.equal(reply.images?.length, 1);
    assert.deepEqual(reply.images?.[0].data, PNG);
    assert.equal(reply.card?.image, reply.images?.[0].filename);

    const buttons = reply.rows?.[0];
    assert.ok(buttons?.kind === 'buttons', 'the card has a row of buttons');
    const tryIt = buttons.buttons.find((b) => b.label === 'Try it');
    assert.ok(tryIt, 'the card has Try it');
    const action = decodeLoraActionId(tryIt.id);
    assert.deepEqual(action, { kind: 'lora-try', lora: 'tabby-cat' });
    // What the adapter prefills parses and resolves against the library.
    const parsed = parseCompose(`${tryItPrefill('tabby-cat')}in a garden`);
    assert.ok(parsed.ok, 'the prefill parses');
    const resolved = resolveLoras(parsed.request, lib, parsed.source);
    assert.ok(resolved.ok, 'the prefill resolves');
    assert.equal(resolved.request.bindings[0].lora, 'tabby-cat');
  });

  it('without a model says it is unchecked; without metadata says so', async () => {
    const lib = await library(folder(FIXTURES[2]), { noBase: true });
    const reply = await loraCardReply(lib, 'lora-iii-peft-unet-te');
    assert.match(fieldOf(reply, 'Base model'), /not checked: no model is configured yet/);
    assert.equal(fieldOf(reply, 'Trigger words'), '`lora_iii_peft_unet_te` (none recorded, so its name)');
    assert.equal(fieldOf(reply, 'Source'), 'not recorded');
    assert.equal(fieldOf(reply, 'Licence'), 'not recorded');
    assert.equal(reply.card?.tone, 'neutral');
  });

  it('an unknown name is an ephemeral error naming the closest', async () => {
    const lib = await library(folder(...FIXTURES));
    const reply = await loraCardReply(lib, 'lora-iv-kohya-locon-unit');
    assert.equal(reply.ephemeral, true);
    assert.match(
      reply.text ?? '',
      /unknown LoRA 'lora-iv-kohya-locon-unit' — did you mean 'lora-iv-kohya-locon-unet'/,
    );
    const nothing = await loraCardReply(lib, 'qqqqqqqqqqqqqqqq');
    assert.match(nothing.text ?? '', /\/loras lists the ones this bot has/);
    const empty = await loraCardReply(lib, '  ');
    assert.match(empty.text ?? '', /give the name of a LoRA/);
  });
});

describe('library action ids', () => {
  const action: fc.Arbitrary<LoraAction> = fc
    .oneof(
      fc.record({
        kind: fc.constant('loras' as const),
        page: fc.integer({ min: 0, max: 9999 }),
        query: fc.string({ maxLength: 64 }),
      }),
      fc.record({ kind: fc.constant('lora-card' as const) }),
      fc.record({ kind: fc.constant('lora-try' as const), lora: fc.stringMatching(/^[a-z0-9-]{1,60}$/) }),
    )
    .map((a) => ({ ...a }));

  it('round-trip, fit 100 characters, and never read as compose actions', () => {
    fc.assert(
      fc.property(action, (a) => {
        const id = encodeLoraActionId(a);
        assert.ok(id.length <= REPLY_LIMITS.idLength, id);
        assert.deepStrictEqual(decodeLoraActionId(id), a);
        assert.equal(decodeActionId(id), null);
      }),
      { numRuns: 300 },
    );
    assert.equal(decodeLoraActionId(encodeActionId({ kind: 'rerun', jobId: 'j1' })), null);
  });

  it('ids it would not write decode to null, and any id that decodes is canonical', () => {
    for (const id of [
      'loras',
      'loras:',
      'loras:01',
      'loras:10000',
      'loras:1:',
      'lora-try:',
      'lora-try:a b',
      'lora-card:x',
    ]) {
      assert.equal(decodeLoraActionId(id), null, id);
    }
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 110 }),
          action.map((a) => `${encodeLoraActionId(a)}:`),
        ),
        (id) => {
          const a = decodeLoraActionId(id);
          if (a !== null) assert.equal(encodeLoraActionId(a), id);
        },
      ),
      { numRuns: 500 },
    );
    assert.throws(() => encodeLoraActionId({ kind: 'loras', page: 0, query: 'q'.repeat(95) }), RangeError);
    assert.throws(() => encodeLoraActionId({ kind: 'lora-try', lora: 'a:b' }), RangeError);
  });
});
