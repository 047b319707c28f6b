// The CLIP tokenizer against the tiny-sd15 reference (transformers' slow CLIPTokenizer), plus
// word/phrase positions, truncation flags and the errors bad tokenizer files give.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import { BytePairEncoder, byteStandIns } from '../../engine/tokenizer/bpe.ts';
import {
  ClipTokenizer,
  findPhrase,
  normalize,
  splitPieces,
  TokenizerFileError,
} from '../../engine/tokenizer/index.ts';
import { fixtureDir } from '../fixtures.ts';

interface ReferencePrompt {
  prompt: string;
  normalized_text: string;
  ids_untruncated: number[];
  ids_padded_77: number[];
  truncated: boolean;
  tokens: string[];
  words: { word: string; positions: number[]; ids: number[] }[];
  pieces: { piece: string; positions: number[]; ids: number[] }[];
}

interface TokenizerCase {
  id: string;
  file: string;
  bos_id: number;
  eos_id: number;
  pad_id: number;
  model_max_length: number;
  prompts: ReferencePrompt[];
}

const fixtures = fixtureDir();
const tokenizerDir = join(fixtures, 'model', 'tokenizer');
const cases = JSON.parse(readFileSync(join(fixtures, 'reference', 'cases.json'), 'utf8')).cases as {
  id: string;
}[];
const reference = cases.find((c) => c.id === 'tokenizer') as TokenizerCase;
const tokenizer = ClipTokenizer.fromDir(tokenizerDir);

/** One int64 tensor of a safetensors file: 8-byte LE header length, JSON header, raw LE data. */
function readInt64Tensor(path: string, key: string): { shape: number[]; values: number[] } {
  const file = readFileSync(path);
  const headerLength = Number(file.readBigUInt64LE(0));
  const header = JSON.parse(file.subarray(8, 8 + headerLength).toString('utf8'));
  const entry = header[key] as { dtype: string; shape: number[]; data_offsets: [number, number] };
  assert.equal(entry.dtype, 'I64', `${key} dtype`);
  const [begin, end] = entry.data_offsets;
  const values: number[] = [];
  for (let at = 8 + headerLength + begin; at < 8 + headerLength + end; at += 8) {
    values.push(Number(file.readBigInt64LE(at)));
  }
  return { shape: entry.shape, values };
}

describe('CLIP tokenizer on the tiny-sd15 reference', () => {
  const stored = readInt64Tensor(join(fixtures, 'reference', reference.file), 'input_ids');

  it('uses the reference special ids and length', () => {
    assert.equal(tokenizer.bosId, reference.bos_id);
    assert.equal(tokenizer.eosId, reference.eos_id);
    assert.equal(tokenizer.padId, reference.pad_id);
    assert.equal(tokenizer.maxLength, reference.model_max_length);
    assert.deepEqual(stored.shape, [reference.prompts.length, reference.model_max_length]);
  });

  reference.prompts.forEach((expected, row) => {
    it(`prompt ${row}: ${JSON.stringify(expected.prompt).slice(0, 60)}`, () => {
      const got = tokenizer.encode(expected.prompt);
      assert.equal(got.normalized, expected.normalized_text);
      assert.equal(normalize(expected.prompt), expected.normalized_text);
      assert.deepEqual(got.ids, expected.ids_padded_77);
      const width = reference.model_max_length;
      assert.deepEqual(
        got.ids,
        stored.values.slice(row * width, (row + 1) * width),
        'tokenizer.safetensors row',
      );
      assert.deepEqual(got.tokens, expected.tokens);
      assert.deepEqual(got.idsUntruncated, expected.ids_untruncated);
      assert.equal(got.truncated, expected.truncated);
      assert.deepEqual(got.words, expected.words);
      assert.deepEqual(got.pieces, expected.pieces);
    });
  });

  it('gives the same answer from its per-piece cache', () => {
    const prompt = reference.prompts[2].prompt;
    assert.deepEqual(tokenizer.encode(prompt), tokenizer.encode(prompt));
  });
});

describe('CLIP tokenizer beyond the reference prompts', () => {
  // Expected values from transformers 4.57's slow CLIPTokenizer (no ftfy) on the fixture's vocab.json and merges.txt.
  const fromTransformers: [string, number[], string][] = [
    [
      '一只猫 and a 中文 sign',
      [49406, 19759, 478, 34517, 359, 163, 234, 360, 537, 320, 19759, 511, 29032, 485, 2292, 49407],
      '一 只 猫 and a 中 文 sign',
    ],
    ['a\u200bcat\u000bdog\u00a0and\u2028fish', [49406, 546, 527, 1929, 537, 2759, 49407], 'acatdog and fish'],
    ['nai\u0308ve', [49406, 1097, 35689, 563, 49407], 'naïve'],
    [
      'ὀδυσσεύς ΟΔΟΣ',
      [
        49406, 157, 121, 222, 138, 112, 139, 227, 139, 225, 139, 225, 138, 113, 139, 235, 139, 480, 138, 123,
        138, 112, 138, 123, 139, 480, 49407,
      ],
      'ὀδυσσεύς οδος',
    ],
    ["cat\u0345s 'ſ 'S", [49406, 2368, 338, 6, 129, 379, 568, 49407], "cat\u0345s 'ſ 's"],
    ['👍🏽 ☕️x', [49406, 43722, 15499, 343, 49407], '👍🏽 ☕️x'],
  ];
  for (const [prompt, ids, normalized] of fromTransformers) {
    it(`matches transformers on ${JSON.stringify(prompt)}`, () => {
      const got = tokenizer.encode(prompt);
      assert.deepEqual(got.idsUntruncated, ids);
      assert.equal(got.normalized, normalized);
    });
  }

  it('treats typed special tokens as whole tokens and words, as transformers does', () => {
    const got = tokenizer.encode('a cat<|endoftext|>dog, <|ENDOFTEXT|>');
    assert.deepEqual(got.idsUntruncated, [49406, 320, 2368, 49407, 1929, 267, 49407, 49407]);
    assert.deepEqual(
      got.words.map((w) => [w.word, w.positions]),
      [
        ['a', [1]],
        ['cat', [2]],
        ['<|endoftext|>', [3]],
        ['dog,', [4, 5]],
        ['<|endoftext|>', [6]],
      ],
    );
  });

  it('flags a word that truncation cuts in two and leaves out the words it cuts off', () => {
    const got = tokenizer.encode(`${'a '.repeat(74)}volumetric light`);
    assert.equal(got.truncated, true);
    assert.equal(got.idsUntruncated.length, 2 + 74 + 3);
    assert.equal(got.ids[76], tokenizer.eosId);
    const last = got.words.at(-1);
    assert.deepEqual(last, {
      word: 'volumetric',
      positions: [75],
      ids: [got.idsUntruncated[75]],
      truncated: true,
    });
    assert.equal(got.words.length, 75);
    assert.deepEqual(got.pieces.at(-1), {
      piece: 'volumetric',
      positions: [75],
      ids: [3563],
      truncated: true,
    });
    assert.equal(got.tokens[75], 'volu');
  });

  it('keeps prompts of exactly 75 content tokens whole', () => {
    const got = tokenizer.encode('a '.repeat(75));
    assert.equal(got.truncated, false);
    assert.equal(got.idsUntruncated.length, 77);
    assert.deepEqual(got.ids, got.idsUntruncated);
    assert.equal(got.words.length, 75);
    assert.ok(got.words.every((w) => w.truncated === undefined));
  });

  it('keeps ids, words and pieces consistent on any text', () => {
    // Arbitrary code points mixed with words, so prompts also run past 75 tokens.
    const text = fc
      .array(
        fc.oneof(
          fc.string({ unit: 'binary', maxLength: 4 }),
          fc.constantFrom(' ', ', ', 'Cat', 'volumetric ', '<|endoftext|>', '\t'),
        ),
        { maxLength: 80 },
      )
      .map((parts) => parts.join(''));
    fc.assert(
      fc.property(text, (prompt) => {
        const got = tokenizer.encode(prompt);
        assert.equal(got.ids.length, 77);
        assert.equal(got.tokens.length, 77);
        assert.equal(got.ids[0], tokenizer.bosId);
        assert.equal(got.idsUntruncated.at(-1), tokenizer.eosId);
        const content = got.idsUntruncated.slice(1, -1);
        assert.equal(got.truncated, content.length > 75);
        const kept = content.slice(0, 75);
        assert.deepEqual(got.ids.slice(1, 1 + kept.length), kept);
        assert.ok(got.ids.slice(1 + kept.length).every((id) => id === tokenizer.eosId));
        const positions = kept.map((_, i) => i + 1);
        assert.deepEqual(
          got.words.flatMap((w) => w.positions),
          positions,
        );
        assert.deepEqual(
          got.pieces.flatMap((p) => p.positions),
          positions,
        );
        assert.deepEqual(
          got.words.flatMap((w) => w.ids),
          kept,
        );
        assert.deepEqual(
          got.pieces.flatMap((p) => p.ids),
          kept,
        );
      }),
      { numRuns: 300 },
    );
  });

  it('splits pieces by CLIP rules: contractions, letter runs, single digits, punctuation runs', () => {
    assert.deepEqual(splitPieces("it's"), ['it', "'s"]);
    assert.deepEqual(splitPieces('2024:'), ['2', '0', '2', '4', ':']);
    assert.deepEqual(splitPieces('(masterpiece:1.2)'), ['(', 'masterpiece', ':', '1', '.', '2', ')']);
    assert.deepEqual(splitPieces('and...'), ['and', '...']);
  });
});

describe('byte-pair encoding', () => {
  it('stands a distinct non-space character in for every byte', () => {
    const standIns = byteStandIns();
    assert.equal(new Set(standIns).size, 256);
    assert.ok(standIns.every((c) => !/\s/u.test(c)));
    assert.equal(standIns['a'.charCodeAt(0)], 'a');
    assert.equal(standIns[0x20], 'Ġ');
  });

  it('applies the lowest-ranked merge first and merges left to right without overlap', () => {
    const bpe = new BytePairEncoder([
      ['a', 'a'],
      ['b', 'c</w>'],
      ['aa', 'bc</w>'],
    ]);
    assert.deepEqual(bpe.encode('aaa'), ['aa', 'a</w>']);
    assert.deepEqual(bpe.encode('aabc'), ['aabc</w>']);
    assert.deepEqual(bpe.encode('abc'), ['a', 'bc</w>']);
    assert.deepEqual(bpe.encode('é'), ['Ã', '©</w>']);
  });
});

describe('finding a phrase in a prompt', () => {
  const hat = tokenizer.encode('a photo of sks dog wearing a red hat, 8k');
  const busy = tokenizer.encode('A Cat, a DOG; and... a penguin!? (masterpiece:1.2) [best quality]');
  const numbers = tokenizer.encode("it's 2024: 3 cats & 12 dogs -- 100% real, #1 photo @home");

  it('finds words whatever their case or surrounding punctuation', () => {
    assert.deepEqual(findPhrase(hat, 'hat'), [[9]]);
    assert.deepEqual(findPhrase(hat, 'HAT,'), [[9]]);
    assert.deepEqual(findPhrase(busy, 'cat'), [[2]]);
    assert.deepEqual(findPhrase(busy, 'penguin'), [[10]]);
    assert.deepEqual(findPhrase(busy, 'masterpiece'), [[13]]);
    assert.deepEqual(findPhrase(busy, 'quality'), [[21]]);
  });

  it('finds multi-word phrases and every occurrence', () => {
    assert.deepEqual(findPhrase(hat, 'red hat'), [[8, 9]]);
    assert.deepEqual(findPhrase(hat, 'a'), [[1], [7]]);
    const panda = tokenizer.encode('a red panda and a red panda, playing');
    assert.deepEqual(findPhrase(panda, 'Red Panda'), [
      [2, 3],
      [6, 7],
    ]);
  });

  it('does not match inside a run of letters and digits', () => {
    assert.deepEqual(findPhrase(numbers, 'cat'), []);
    assert.deepEqual(findPhrase(numbers, '2'), []);
    assert.deepEqual(findPhrase(numbers, '2024'), [[3, 4, 5, 6]]);
    assert.deepEqual(findPhrase(hat, 'k'), []);
    assert.deepEqual(findPhrase(hat, '8k'), [[11, 12]]);
    assert.deepEqual(findPhrase(numbers, 'home'), [[25]]);
  });

  it('returns nothing for a phrase without letters or digits, or one cut by truncation', () => {
    assert.deepEqual(findPhrase(hat, ', '), []);
    const long = tokenizer.encode(`${'a '.repeat(75)}cat`);
    assert.deepEqual(findPhrase(long, 'cat'), []);
  });

  it('spans every token of a word split into several', () => {
    const volumetric = tokenizer.encode('volumetric light');
    assert.deepEqual(findPhrase(volumetric, 'volumetric'), [[1, 2]]);
  });
});

describe('tokenizer file errors', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'clora-tokenizer-'));
  after(() => rmSync(tmp, { recursive: true, force: true }));
  const vocabPath = join(tokenizerDir, 'vocab.json');
  const mergesPath = join(tokenizerDir, 'merges.txt');
  const realVocab = JSON.parse(readFileSync(vocabPath, 'utf8')) as Record<string, number>;

  function write(name: string, content: string): string {
    const path = join(tmp, name);
    writeFileSync(path, content);
    return path;
  }

  function assertFileError(load: () => unknown, path: string, pattern: RegExp) {
    assert.throws(load, (error: unknown) => {
      assert.ok(error instanceof TokenizerFileError, `expected a TokenizerFileError, got ${error}`);
      assert.equal(error.path, path);
      assert.match(error.message, pattern);
      assert.ok(error.message.includes(path), `message names ${path}: ${error.message}`);
      return true;
    });
  }

  it('names a missing vocab.json or merges.txt and where to find them', () => {
    const missing = join(tmp, 'nowhere', 'vocab.json');
    assertFileError(
      () => ClipTokenizer.fromFiles(missing, mergesPath),
      missing,
      /not found.*tokenizer folder/,
    );
    const noMerges = join(tmp, 'merges.txt');
    assertFileError(() => ClipTokenizer.fromDir(tmp), join(tmp, 'vocab.json'), /vocab\.json.*not found/);
    assertFileError(() => ClipTokenizer.fromFiles(vocabPath, noMerges), noMerges, /merges\.txt.*not found/);
  });

  it('rejects a vocab.json that is not JSON, not an object, or has non-integer ids', () => {
    const broken = write('broken.json', '{"a": 1,');
    assertFileError(() => ClipTokenizer.fromFiles(broken, mergesPath), broken, /not valid JSON/);
    const array = write('array.json', '["a", "b"]');
    assertFileError(() => ClipTokenizer.fromFiles(array, mergesPath), array, /an array, not an object/);
    const fractional = write('fractional.json', '{"a": 1.5}');
    assertFileError(() => ClipTokenizer.fromFiles(fractional, mergesPath), fractional, /"a" maps to 1\.5/);
  });

  it('rejects a vocab.json that lacks the special tokens or a merge result', () => {
    const { '<|endoftext|>': _eos, ...noEos } = realVocab;
    const noEosPath = write('no-eos.json', JSON.stringify(noEos));
    assertFileError(() => ClipTokenizer.fromFiles(noEosPath, mergesPath), noEosPath, /"<\|endoftext\|>"/);
    // merges.txt line 2 is "i n", so a vocabulary without "in" cannot hold its result.
    const { in: _in, ...noIn } = realVocab;
    const noInPath = write('no-in.json', JSON.stringify(noIn));
    assertFileError(
      () => ClipTokenizer.fromFiles(noInPath, mergesPath),
      mergesPath,
      /line 2 makes token "in", which .* has no id for/,
    );
  });

  it('rejects a merges.txt without its header or with a malformed line', () => {
    const headless = write('headless.txt', 'i n\nt h\n');
    assertFileError(() => ClipTokenizer.fromFiles(vocabPath, headless), headless, /"#version"/);
    const malformed = write('malformed.txt', '#version: 0.2\ni n\nt h e\n');
    assertFileError(
      () => ClipTokenizer.fromFiles(vocabPath, malformed),
      malformed,
      /line 3: expected two symbols/,
    );
  });
});
