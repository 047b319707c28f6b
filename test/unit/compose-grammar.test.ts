// The /compose language by example: what users type, the request it becomes, the errors
// they see, and formatting, LoRA resolution and tweaks.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  applySuggestion,
  type ComposeError,
  type ComposeRequest,
  closestNames,
  completeName,
  composeSettings,
  editDistance,
  formatCompose,
  indefiniteArticle,
  loraCatalog,
  type ParseResult,
  parseCompose,
  pointAtError,
  resolveLoras,
  tweakRequest,
  withSeed,
} from '../../commands/compose/index.ts';

function parsed(input: string, settings = composeSettings()): ComposeRequest {
  const result = parseCompose(input, settings);
  if (!result.ok) assert.fail(`${input}: ${result.error.message}`);
  return result.request;
}

function failed(result: ParseResult): ComposeError {
  if (result.ok) assert.fail(`expected an error, got ${JSON.stringify(result.request)}`);
  return result.error;
}

/** Each subject as the prompt holds it at its span. */
function subjectsAtSpans(request: ComposeRequest): string[] {
  return request.bindings.map((b) => request.prompt.slice(b.span.start, b.span.end));
}

describe('bindings become a prompt', () => {
  it('a leading list reads as natural text with the subjects located', () => {
    const r = parsed('cat:<tabby> penguin:<plush-penguin> in a house');
    assert.equal(r.prompt, 'a cat and a penguin in a house');
    assert.deepEqual(
      r.bindings.map((b) => [b.subject, b.lora, b.weight]),
      [
        ['cat', 'tabby', 1],
        ['penguin', 'plush-penguin', 1],
      ],
    );
    assert.deepEqual(r.bindings[0].span, { start: 2, end: 5 });
    assert.deepEqual(r.bindings[1].span, { start: 12, end: 19 });
  });

  it('three or more subjects take commas and a final "and", with "an" before vowel sounds', () => {
    const r = parsed('cat:<tabby> dog:<corgi> owl:<barn-owl> on a sofa');
    assert.equal(r.prompt, 'a cat, a dog and an owl on a sofa');
    assert.deepEqual(subjectsAtSpans(r), ['cat', 'dog', 'owl']);
    assert.equal(
      parsed('unicorn:<u> elephant:<e> hourglass:<h> apple:<a>').prompt,
      'a unicorn, an elephant, an hourglass and an apple',
    );
  });

  it('bindings inside a sentence keep the sentence', () => {
    const r = parsed('a cat:<tabby> chasing a penguin:<plush>');
    assert.equal(r.prompt, 'a cat chasing a penguin');
    assert.deepEqual(subjectsAtSpans(r), ['cat', 'penguin']);
  });

  it('two bindings in a row mid-sentence form a list; a determiner before them stands for the first article', () => {
    assert.equal(parsed('a photo of cat:<a> dog:<b>').prompt, 'a photo of a cat and a dog');
    assert.equal(parsed('the cat:<a> dog:<b> asleep').prompt, 'the cat and a dog asleep');
  });

  it('subjects that already have a determiner or number get no article', () => {
    assert.equal(parsed('"two cats":<a> "the dog":<b> outside').prompt, 'two cats and the dog outside');
  });

  it('one leading binding gets its article too', () => {
    assert.equal(parsed('cat:<tabby> chasing a ball').prompt, 'a cat chasing a ball');
  });

  it('bare LoRA names, weights and quoted multi-word subjects', () => {
    const r = parsed('cat:tabby@0.8 "red  panda":<red-panda>@.5 in snow');
    assert.equal(r.prompt, 'a cat and a red panda in snow');
    assert.deepEqual(
      r.bindings.map((b) => [b.subject, b.lora, b.weight]),
      [
        ['cat', 'tabby', 0.8],
        ['red panda', 'red-panda', 0.5],
      ],
    );
    assert.deepEqual(subjectsAtSpans(r), ['cat', 'red panda']);
  });

  it('smart quotes from phone keyboards work like straight ones', () => {
    assert.equal(parsed('“red panda”:<rp> eating').prompt, 'a red panda eating');
  });

  it('punctuation glued to a binding stays in the prompt after the subject', () => {
    const r = parsed("a cat:<tabby>, a dog:<rex>'s ball and a penguin:plush.");
    assert.equal(r.prompt, "a cat, a dog's ball and a penguin.");
    assert.deepEqual(subjectsAtSpans(r), ['cat', 'dog', 'penguin']);
    assert.equal(r.bindings[2].lora, 'plush');
    assert.equal(parsed('a cat:<t>@1. then').prompt, 'a cat. then');
  });

  it('a style binding applies everywhere and is not part of the prompt', () => {
    const r = parsed('style:<watercolor>@0.6 cat:<tabby> penguin:<plush> in a house');
    assert.deepEqual(r.style, { lora: 'watercolor', weight: 0.6 });
    assert.equal(r.prompt, 'a cat and a penguin in a house');
    assert.equal(r.bindings.length, 2);
    assert.equal(parsed('"style":<s> on a wall').bindings[0].subject, 'style');
  });

  it('quotes let prompt words carry colons and other syntax', () => {
    assert.equal(parsed('cat:<t> on a "16:9" poster "--wide"').prompt, 'a cat on a 16:9 poster --wide');
    assert.equal(parsed('note: a cat:<t> https://x').prompt, 'note: a cat https://x');
  });

  it('times and ratios are prompt text; a bare binding needs letters on both sides of the colon', () => {
    for (const text of [
      'a clock showing 10:30 on a wall',
      'ratio 16:9 poster',
      'at 9:tabby',
      'x2:3',
      '2x:tabby',
    ]) {
      const r = parsed(text);
      assert.equal(r.prompt, text);
      assert.deepEqual(r.bindings, []);
    }
    const r = parsed('a clock showing 10:30 near a cat:<tabby>');
    assert.equal(r.prompt, 'a clock showing 10:30 near a cat');
    assert.deepEqual(
      r.bindings.map((b) => [b.subject, b.lora]),
      [['cat', 'tabby']],
    );
    assert.deepEqual(
      parsed('10:<tabby> cats').bindings.map((b) => b.lora),
      ['tabby'],
    );
  });

  it('a leading /compose is the command name, not prompt', () => {
    assert.equal(parsed('/compose cat:<t> here').prompt, 'a cat here');
  });
});

describe('options', () => {
  it('fill a normalised request, with defaults for the rest', () => {
    const r = parsed(
      'cat:<t> x --seed 42 --steps=30 --size 512x768 --cfg 6.5 --neg "blurry,  ugly" --sampler euler-a --method merge --masks',
    );
    assert.deepEqual(
      { ...r, prompt: undefined, bindings: undefined },
      {
        prompt: undefined,
        bindings: undefined,
        style: null,
        seed: 42,
        steps: 30,
        width: 512,
        height: 768,
        cfg: 6.5,
        negativePrompt: 'blurry, ugly',
        sampler: 'euler_a',
        method: 'merge',
        masks: true,
      },
    );
    const d = parsed('cat:<t> x');
    assert.equal(d.seed, null);
    assert.equal(d.steps, 50);
    assert.equal(d.sampler, 'ddim');
    assert.equal(d.method, 'clora');
  });

  it('an unquoted --neg takes the words up to the next option', () => {
    const r = parsed('cat:<t> x --neg blurry, low quality --seed 3');
    assert.equal(r.negativePrompt, 'blurry, low quality');
    assert.equal(r.seed, 3);
  });

  it('dash look-alikes from phone keyboards start options as -- does', () => {
    for (const dash of ['—', '–', '−', '—-', '-–']) {
      const r = parsed(`cat:<t> x ${dash}steps 4 ${dash}seed=7 ${dash}masks`);
      assert.equal(r.prompt, 'a cat x');
      assert.deepEqual([r.steps, r.seed, r.masks], [4, 7, true], dash);
    }
    // A plain hyphen or a dash before a non-letter stays text.
    assert.equal(parsed('cat:<t> x -steps — 4').prompt, 'a cat x -steps — 4');
  });

  it('--size spread over words is one size, never words left in the prompt', () => {
    for (const size of ['256 x 256', '256 x256', '256x 256', '256 × 384', '256 X 384']) {
      const r = parsed(`cat:<t> x --size ${size} poster`);
      assert.equal(r.prompt, 'a cat x poster', size);
      assert.equal(r.width, 256);
      assert.equal(r.height, size.endsWith('384') ? 384 : 256);
    }
    const eq = parsed('cat:<t> x --size=256 x 320');
    assert.deepEqual([eq.width, eq.height, eq.prompt], [256, 320, 'a cat x']);
    assert.equal(parsed('cat:<t> x --size 256 xylophone').prompt, 'a cat x xylophone');
  });

  it('options may come first; --size N means a square; dpm++ spellings work', () => {
    const r = parsed('--size 768 --sampler DPM++_2M_Karras cat:<t> x');
    assert.equal(r.width, 768);
    assert.equal(r.height, 768);
    assert.equal(r.sampler, 'dpmpp_2m_karras');
  });

  it('limits and defaults are configurable', () => {
    const settings = composeSettings({ limits: { maxSteps: 40, maxLoras: 2 }, defaults: { steps: 20 } });
    assert.equal(parsed('cat:<t> x', settings).steps, 20);
    assert.equal(failed(parseCompose('cat:<t> x --steps 50', settings)).code, 'bad-option-value');
    assert.equal(failed(parseCompose('cat:<a> dog:<b> style:<c>', settings)).code, 'too-many-loras');
  });

  it('seed takes the full 32-bit range and "random"', () => {
    assert.equal(parsed('cat:<t> --seed 4294967295').seed, 4294967295);
    assert.equal(parsed('cat:<t> --seed random').seed, null);
    assert.equal(failed(parseCompose('cat:<t> --seed 4294967296')).code, 'bad-option-value');
    assert.equal(failed(parseCompose('cat:<t> --seed -1')).code, 'bad-option-value');
  });
});

describe('errors say where and what to do', () => {
  const cases: [string, string, string, string | undefined][] = [
    // input, code, the text at the span, the suggestion
    ['cat:<tabby penguin:<p>', 'unterminated-lora', '<tabby', '<tabby>'],
    ['"red panda:<rp> eating', 'unterminated-quote', '"red panda', '"red panda"'],
    ['cat:<tabby> --neg "blurry', 'unterminated-quote', '"blurry', '"blurry"'],
    [':<tabby> in a house', 'missing-subject', ':<tabby>', undefined],
    ['"":<tabby> x', 'missing-subject', '""', undefined],
    ['cat:<> x', 'empty-lora', '<>', undefined],
    ['cat:<a>@ x', 'bad-weight', '@', undefined],
    ['cat:<a>@3 x', 'bad-weight', '@3', '@2'],
    ['cat:<a>x y', 'malformed-binding', 'cat:<a>x', 'cat:<a> x'],
    ['a (cat:<a>) y', 'malformed-binding', '(cat:<a>)', '( cat:<a>)'],
    ['cat:<a> Cat:<b>', 'duplicate-subject', 'Cat', undefined],
    ['cat:<tabby> dog:<Tabby>', 'duplicate-lora', '<Tabby>', undefined],
    ['style:<w> cat:<w>', 'duplicate-lora', '<w>', undefined],
    ['style:<w> cat:<t> style:<v>', 'duplicate-style', 'style:<v>', undefined],
    ['--seed 3', 'empty-prompt', '--seed 3', undefined],
    ['', 'empty-prompt', '', undefined],
    ['cat:<t> --sede 3', 'unknown-option', '--sede', '--seed'],
    ['cat:<t> --seed 1 --seed 2', 'duplicate-option', '--seed 2', undefined],
    ['cat:<t> --steps', 'missing-option-value', '--steps', undefined],
    ['cat:<t> --steps 200', 'bad-option-value', '200', '150'],
    ['cat:<t> --steps 2.5', 'bad-option-value', '2.5', '3'],
    ['cat:<t> --cfg 0.5', 'bad-option-value', '0.5', '1'],
    ['cat:<t> --size 500x700', 'bad-option-value', '500x700', '512x704'],
    ['cat:<t> --size big', 'bad-option-value', 'big', undefined],
    ['cat:<t> --sampler eulr', 'bad-option-value', 'eulr', 'euler'],
    ['cat:<t> --method clroa', 'bad-option-value', 'clroa', 'clora'],
    ['cat:<t> --masks=yes', 'bad-option-value', '--masks=yes', '--masks'],
    // Nothing that cannot be read cleanly is kept as prompt text.
    ['cat:<tabby>@.5.5 x', 'bad-weight', '@.5.5', '@.5'],
    ['cat:<tabby>@1.2.3 x', 'bad-weight', '@1.2.3', '@1.2'],
    ['cat:<tabby>@0.8x y', 'bad-weight', '@0.8x', '@0.8'],
    ['cat:<t> x --size 256 x', 'bad-option-value', '256 x', undefined],
    ['cat:<t> x --size 256 x wide', 'bad-option-value', '256 x', undefined],
    ['cat:<t> x --size 256x pixels', 'bad-option-value', '256x', undefined],
    ['cat:<t> x --neg "a "b" c"', 'stray-quote', '"', undefined],
    ['cat:<t> say c" x', 'stray-quote', '"', undefined],
    ['cat:<t> "red"" x', 'stray-quote', '"', undefined],
    ['cat:<t>" x', 'stray-quote', '"', undefined],
    ['cat:<t> x —sleeping', 'unknown-option', '—sleeping', undefined],
  ];
  for (const [input, code, atSpan, suggestion] of cases) {
    it(`${code}: ${input}`, () => {
      const error = failed(parseCompose(input));
      assert.equal(error.code, code, error.message);
      assert.equal(input.slice(error.span.start, error.span.end), atSpan);
      assert.equal(error.suggestion, suggestion);
      assert.ok(error.message.length > 10);
    });
  }

  it('a stray quote is pointed at where it sits, not where the quoted text began', () => {
    const input = 'cat:<t> x --neg "a "b" c"';
    const error = failed(parseCompose(input));
    assert.equal(error.span.start, input.indexOf('b"') + 1);
    assert.match(error.message, /write a quote inside quoted text as \\"/);
    assert.equal(parsed('cat:<t> x --neg "a \\"b\\" c"').negativePrompt, 'a "b" c');
  });

  it('an unknown option written with a look-alike dash says how to keep it as text', () => {
    assert.match(failed(parseCompose('cat:<t> x —sleeping')).message, /quote it: "—sleeping"/);
  });

  it('the size message states the rule', () => {
    const error = failed(parseCompose('cat:<t> --size 500x700'));
    assert.match(error.message, /multiple of 64 between 256 and 1024/);
  });

  it('more LoRAs than the maximum points at the first one too many', () => {
    const input = Array.from({ length: 9 }, (_, i) => `s${i}:<l${i}>`).join(' ');
    const error = failed(parseCompose(input));
    assert.equal(error.code, 'too-many-loras');
    assert.equal(input.slice(error.span.start, error.span.end), 's8:<l8>');
    assert.match(error.message, /at most 8/);
  });

  it('an empty prompt after an unquoted --neg says why', () => {
    assert.match(failed(parseCompose('--neg blurry cat house')).message, /quote/);
  });

  it('a suggestion applied gives input that parses', () => {
    for (const input of [
      'cat:<tabby penguin:<p>',
      '"red panda:<rp> eating',
      'cat:<a>x y',
      'cat:<t> --sede 3',
    ]) {
      const fixed = applySuggestion(input, failed(parseCompose(input)));
      assert.ok(fixed !== null);
      assert.ok(parseCompose(fixed).ok, fixed);
    }
  });

  it('pointAtError puts carets under the span', () => {
    const input = 'cat:<t> --sede 3';
    assert.equal(pointAtError(input, failed(parseCompose(input))), 'cat:<t> --sede 3\n        ^^^^^^');
  });
});

describe('articles', () => {
  const cases: [string, 'a' | 'an'][] = [
    ['cat', 'a'],
    ['owl', 'an'],
    ['umbrella', 'an'],
    ['unicorn', 'a'],
    ['university', 'a'],
    ['European', 'a'],
    ['hour', 'an'],
    ['honest', 'an'],
    ['horse', 'a'],
    ['one-eyed', 'a'],
    ['8-bit', 'an'],
    ['11-year-old', 'an'],
    ['110', 'a'],
    ['Elephant', 'an'],
  ];
  for (const [word, article] of cases)
    it(`${article} ${word}`, () => assert.equal(indefiniteArticle(word), article));
});

describe('formatCompose', () => {
  it('writes the canonical command, leaving out defaults', () => {
    const r = parsed('cat:tabby   penguin:<plush-penguin>@0.80 in a house --seed=7 --cfg 7.5');
    assert.equal(formatCompose(r), 'cat:<tabby> penguin:<plush-penguin>@0.8 in a house --seed 7');
  });

  it('keeps bindings in place when the prompt is a sentence, and quotes what needs it', () => {
    const r = parsed('a "red panda":<rp> on a "16:9" poster style:<wc>@0.6 --neg "say \\"no\\"" --masks');
    assert.equal(r.negativePrompt, 'say "no"');
    assert.equal(
      formatCompose(r),
      '"red panda":<rp> on a 16:9 poster style:<wc>@0.6 --neg "say \\"no\\"" --masks',
    );
    const s = parsed('the cat:<a> dog:<b> asleep');
    assert.equal(formatCompose(s), 'the cat:<a> and a dog:<b> asleep');
  });

  it('reads back to the same request', () => {
    for (const input of [
      'cat:<tabby> dog:<corgi> owl:<barn-owl> on a sofa --size 768x512 --sampler pndm',
      "a cat:<t>, a dog:<d>'s ball and a penguin:<p>@2. --seed 0",
      '"style":<s> "--x" /compose :) cat:<c>@0',
    ]) {
      const r = parsed(input);
      assert.deepEqual(parsed(formatCompose(r)), r, formatCompose(r));
    }
  });

  it('a weight of 2 before a full stop is written 2.0 so the stop is not read as a decimal point', () => {
    const r = parsed('a cat:<t>@2. x');
    assert.equal(formatCompose(r), 'cat:<t>@2.0. x');
  });

  it('--no-masks is written when masks are on by default', () => {
    const settings = composeSettings({ defaults: { masks: true } });
    const r = parsed('cat:<t> x --no-masks', settings);
    assert.equal(r.masks, false);
    assert.equal(formatCompose(r, settings), 'cat:<t> x --no-masks');
    assert.equal(formatCompose(r), 'cat:<t> x');
  });
});

describe('resolving LoRA names against the catalog', () => {
  const catalog = loraCatalog([
    'penguin-plush',
    'tabby',
    'Barn-Owl',
    'watercolor',
    'pencil-sketch',
    'corgi-v2',
  ]);

  it('unknown names get the closest ones, with the span of what was typed', () => {
    const input = 'cat:<tabby> penguin:<pengiun> in a house';
    const p = parseCompose(input);
    assert.ok(p.ok);
    const error = failed(resolveLoras(p.request, catalog, p.source));
    assert.equal(error.code, 'unknown-lora');
    assert.equal(error.message, "unknown LoRA 'pengiun' — did you mean 'penguin-plush'?");
    assert.equal(input.slice(error.span.start, error.span.end), '<pengiun>');
    assert.equal(applySuggestion(input, error), 'cat:<tabby> penguin:<penguin-plush> in a house');
  });

  it('known names take the catalog spelling', () => {
    const p = parseCompose('owl:<barn-owl> x style:<WATERCOLOR>');
    assert.ok(p.ok);
    const r = resolveLoras(p.request, catalog, p.source);
    assert.ok(r.ok);
    assert.equal(r.request.bindings[0].lora, 'Barn-Owl');
    assert.equal(r.request.style?.lora, 'watercolor');
  });

  it('an unknown style is reported; with no source the span points into the canonical text', () => {
    const r = parsed('cat:<tabby> x style:<watercolour>');
    const error = failed(resolveLoras(r, catalog));
    assert.match(error.message, /did you mean 'watercolor'/);
    assert.equal(formatCompose(r).slice(error.span.start, error.span.end), '<watercolour>');
  });

  it('nothing near: the message says where to look', () => {
    const r = parsed('cat:<zzzzzzzz> x');
    const error = failed(resolveLoras(r, catalog));
    assert.equal(error.suggestion, undefined);
    assert.match(error.message, /\/loras/);
  });

  it('fuzzy matching: distance counts swaps as one edit; parts of names match', () => {
    assert.equal(editDistance('pengiun', 'penguin'), 1);
    assert.equal(editDistance('', 'abc'), 3);
    assert.equal(editDistance('kitten', 'sitting'), 3);
    assert.deepEqual(closestNames('corgi', catalog.names()), ['corgi-v2']);
    assert.deepEqual(closestNames('sketch', catalog.names()), ['pencil-sketch']);
    assert.deepEqual(closestNames('qqq', catalog.names()), []);
  });

  it('completion: names starting with the typed part, then containing it, then near misses', () => {
    const names = ['plush-penguin', 'penguin', 'tabby', 'pengiun-old', 'emperor-penguin'];
    assert.deepEqual(completeName('peng', names, 25), [
      'penguin',
      'pengiun-old',
      'plush-penguin',
      'emperor-penguin',
    ]);
    assert.deepEqual(completeName('pengiun', names, 2), ['pengiun-old', 'penguin']);
    assert.deepEqual(completeName('', names, 3), names.slice(0, 3));
    assert.deepEqual(completeName('zzz', names, 25), []);
  });
});

describe('tweaks keep everything but the one change', () => {
  const base = parsed('cat:<tabby> penguin:<plush>@0.7 in a house --seed 99 --steps 30');

  it('swap a LoRA', () => {
    const r = tweakRequest(base, { kind: 'swap-lora', subject: 'Penguin', lora: 'emperor' });
    assert.ok(r.ok);
    assert.deepEqual(r.request, {
      ...base,
      bindings: [base.bindings[0], { ...base.bindings[1], lora: 'emperor' }],
    });
    assert.equal(r.request.seed, 99);
    assert.equal(
      formatCompose(r.request),
      'cat:<tabby> penguin:<emperor>@0.7 in a house --seed 99 --steps 30',
    );
  });

  it('change a weight', () => {
    const r = tweakRequest(base, { kind: 'weight', subject: 'cat', weight: 1.5 });
    assert.ok(r.ok);
    assert.equal(r.request.bindings[0].weight, 1.5);
    assert.deepEqual(r.request.bindings[1], base.bindings[1]);
  });

  it('add and drop a style', () => {
    const added = tweakRequest(base, { kind: 'style', style: { lora: 'watercolor', weight: 0.6 } });
    assert.ok(added.ok);
    assert.deepEqual(added.request, { ...base, style: { lora: 'watercolor', weight: 0.6 } });
    const dropped = tweakRequest(added.request, { kind: 'style', style: null });
    assert.ok(dropped.ok);
    assert.deepEqual(dropped.request, base);
  });

  it('refuses what the parser would refuse', () => {
    const code = (r: ReturnType<typeof tweakRequest>) => (r.ok ? 'ok' : r.error.code);
    assert.equal(
      code(tweakRequest(base, { kind: 'swap-lora', subject: 'cat', lora: 'PLUSH' })),
      'duplicate-lora',
    );
    assert.equal(
      code(tweakRequest(base, { kind: 'swap-lora', subject: 'cat', lora: 'a>b' })),
      'bad-lora-name',
    );
    assert.equal(code(tweakRequest(base, { kind: 'weight', subject: 'cat', weight: 2.5 })), 'bad-weight');
    assert.equal(
      code(tweakRequest(base, { kind: 'style', style: { lora: 'tabby', weight: 1 } })),
      'duplicate-lora',
    );
    const full = parsed(Array.from({ length: 8 }, (_, i) => `s${i}:<l${i}>`).join(' '));
    assert.equal(
      code(tweakRequest(full, { kind: 'style', style: { lora: 'w', weight: 1 } })),
      'too-many-loras',
    );
    const unknown = tweakRequest(base, { kind: 'weight', subject: 'pengin', weight: 1 });
    assert.ok(!unknown.ok);
    assert.equal(unknown.error.code, 'unknown-subject');
    assert.equal(unknown.error.suggestion, 'penguin');
  });

  it('the request given is left as it was', () => {
    const before = structuredClone(base);
    tweakRequest(base, { kind: 'weight', subject: 'cat', weight: 0.1 });
    tweakRequest(base, { kind: 'swap-lora', subject: 'cat', lora: 'x' });
    assert.deepEqual(base, before);
  });
});

describe('withSeed', () => {
  it('draws a seed only when there is none', () => {
    const r = parsed('cat:<t> x');
    assert.equal(withSeed(r, () => 0.5).seed, 2 ** 31);
    assert.equal(withSeed(r, () => 0.999999999999).seed, 2 ** 32 - 1);
    assert.equal(withSeed(parsed('cat:<t> x --seed 5'), () => 0.5).seed, 5);
  });
});
