// Properties of the /compose language over generated input: formatting round-trips every
// valid request, and no input, however odd, makes the parser throw.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  COMPOSITION_METHODS,
  type ComposeRequest,
  type ComposeSettings,
  composeSettings,
  DEFAULT_COMPOSE_SETTINGS,
  formatCompose,
  type LoraBinding,
  type ParseResult,
  parseCompose,
  SAMPLERS,
  subjectList,
  tweakRequest,
} from '../../commands/compose/index.ts';

const RUNS = Number(process.env.COMPOSE_FUZZ_RUNS ?? 400);

/** Words of every kind: plain, grammar look-alikes, and arbitrary code points. */
const promptWord = fc
  .oneof(
    fc.constantFrom('a', 'an', 'the', 'in', 'house', 'and', 'of', 'Two'),
    fc.constantFrom(
      '--seed',
      '"',
      '“x”',
      'x"y',
      ':)',
      '16:9',
      'a:b',
      '<3',
      '@',
      '/compose',
      'style:',
      '\\',
      '—',
    ),
    fc.string({ unit: 'binary', minLength: 1, maxLength: 6 }),
  )
  .filter((w) => w !== '' && !/\s/.test(w));

const phrase = (maxWords: number) =>
  fc.array(promptWord, { minLength: 1, maxLength: maxWords }).map((words) => words.join(' '));

const subjectText = fc.oneof(
  fc.stringMatching(/^[a-z][a-z'-]{0,7}$/),
  fc.constantFrom('red panda', 'the dog', 'two cats', 'Style', 'umbrella', 'hour'),
  phrase(3),
);

const loraName = phrase(2).filter((n) => !/[<>"“”]/.test(n));

/**
 * Punctuation glued to a subject in the prompt, as `cat:<t>,` leaves it. A quote is never
 * glued (a stray quote is refused), and '.5' only follows weight 1 (`@0.8.5` is refused).
 */
const tail = fc.oneof(
  { weight: 3, arbitrary: fc.constant('') },
  { weight: 1, arbitrary: fc.constantFrom(',', '.', "'s", '!', '…', ').', ':', '.5', '-ish') },
);

const weight = fc.oneof(
  fc.constant(1),
  fc.constantFrom(0, 0.5, 0.8, 2),
  fc.double({ min: 0, max: 2, noNaN: true }).map((w) => (w === 0 ? 0 : w)),
);

interface Plan {
  subjects: string[];
  loras: string[];
  weights: number[];
  tails: string[];
  /** Words before each subject (the first may be empty), then after the last. */
  gaps: string[];
  leadingList: number;
}

/**
 * Requests in the image of the parser, built directly: subjects never adjacent (two bindings
 * in a row would be read as a list) and the prompt opens with a word, or with a list of
 * subjects written out as the parser writes one.
 */
function requestArbitrary(settings: ComposeSettings): fc.Arbitrary<ComposeRequest> {
  const { limits } = settings;
  const plan = fc
    .integer({ min: 0, max: limits.maxLoras - 1 })
    .chain((n) =>
      fc.record({
        subjects: fc.uniqueArray(subjectText, {
          minLength: n,
          maxLength: n,
          selector: (s) => s.toLowerCase(),
        }),
        loras: fc.uniqueArray(loraName, {
          minLength: n + 1,
          maxLength: n + 1,
          selector: (s) => s.toLowerCase(),
        }),
        weights: fc.array(weight, { minLength: n + 1, maxLength: n + 1 }),
        tails: fc.array(tail, { minLength: n, maxLength: n }),
        gaps: fc.array(phrase(3), { minLength: n + 1, maxLength: n + 1 }),
        leadingList: fc.integer({ min: 0, max: n }),
        trailing: fc.boolean(),
      }),
    )
    .map((p): Plan & { trailing: boolean } => p);
  const options = fc.record({
    seed: fc.option(fc.integer({ min: 0, max: limits.maxSeed }), { nil: null }),
    steps: fc.integer({ min: limits.minSteps, max: limits.maxSteps }),
    width: fc.integer({ min: limits.minSide / 64, max: limits.maxSide / 64 }).map((k) => k * 64),
    height: fc.integer({ min: limits.minSide / 64, max: limits.maxSide / 64 }).map((k) => k * 64),
    cfg: fc.oneof(fc.constant(7.5), fc.double({ min: limits.minCfg, max: limits.maxCfg, noNaN: true })),
    sampler: fc.constantFrom(...SAMPLERS),
    method: fc.constantFrom(...COMPOSITION_METHODS),
    masks: fc.boolean(),
    negativePrompt: fc.oneof(fc.constant(''), phrase(4)),
    withStyle: fc.boolean(),
  });
  return fc.tuple(plan, options).map(([p, o]) => {
    const n = p.subjects.length;
    p.tails = p.tails.map((t, i) => (p.weights[i] !== 1 && /^\.\d/.test(t) ? '.' : t));
    const bindings: LoraBinding[] = [];
    let prompt = '';
    const put = (text: string) => {
      if (text === '') return;
      if (prompt !== '') prompt += ' ';
      prompt += text;
    };
    const k = p.leadingList;
    if (k > 0) {
      const list = subjectList(p.subjects.slice(0, k), false);
      put(list.text);
      for (let i = 0; i < k; i++) {
        bindings.push({
          subject: p.subjects[i],
          lora: p.loras[i],
          weight: p.weights[i],
          span: list.spans[i],
        });
      }
      prompt += p.tails[k - 1];
    }
    for (let i = k; i < n; i++) {
      put(p.gaps[i]);
      put(p.subjects[i]);
      const start = prompt.length - p.subjects[i].length;
      bindings.push({
        subject: p.subjects[i],
        lora: p.loras[i],
        weight: p.weights[i],
        span: { start, end: prompt.length },
      });
      prompt += p.tails[i];
    }
    if (p.trailing || n === 0) put(p.gaps[n]);
    const { withStyle, ...values } = o;
    return {
      prompt,
      bindings,
      style: withStyle ? { lora: p.loras[n], weight: p.weights[n] } : null,
      ...values,
    };
  });
}

function assertWellFormed(input: string, result: ParseResult): void {
  if (result.ok) {
    const { request } = result;
    assert.ok(request.prompt.length > 0);
    for (const b of request.bindings) {
      assert.equal(request.prompt.slice(b.span.start, b.span.end), b.subject);
    }
    return;
  }
  const { span, message } = result.error;
  assert.ok(0 <= span.start && span.start <= span.end && span.end <= input.length, JSON.stringify(span));
  assert.ok(message.length > 0);
}

/** Input assembled from pieces of the grammar, right and wrong, with odd spacing. */
const commandFragment = fc.oneof(
  promptWord,
  fc.constantFrom(
    'cat:<tabby>',
    'dog:rex@0.8',
    '"red panda":<rp>',
    '“x y”:<z>',
    'style:<wc>@0.6',
    'style:<v>',
    ':<x>',
    'cat:<',
    'cat:<>',
    'x:<y>@',
    'x:<y>@9',
    'x:<y>,',
    'x:<y>z',
    '(a:<b>)',
    '"',
    '\\"',
    '--seed',
    '--seed=1',
    '--steps 20',
    '--size 512x768',
    '--size 500',
    '--cfg 7',
    '--neg',
    '--neg "a b"',
    '--sampler euler_a',
    '--method merge',
    '--masks',
    '--no-masks',
    '--masks=1',
    '--bogus',
    '--',
    '/compose',
  ),
  fc.stringMatching(/^[a-z]{1,4}:<[a-z]{1,4}>(@[0-9.]{1,3})?[,.]?$/),
);
const separator = fc.constantFrom(' ', ' ', '  ', '', '\n', '\t', '\u00a0');
const commandText = fc
  .array(fc.tuple(commandFragment, separator), { maxLength: 14 })
  .map((parts) => parts.map(([f, s]) => f + s).join(''));

describe('formatCompose round-trips', () => {
  const variants: [string, ComposeSettings][] = [
    ['default settings', DEFAULT_COMPOSE_SETTINGS],
    [
      'masks on by default, tighter limits',
      composeSettings({ defaults: { masks: true, steps: 20 }, limits: { maxLoras: 3 } }),
    ],
  ];
  for (const [name, settings] of variants) {
    it(`parse(format(r)) deep-equals r for generated requests (${name})`, () => {
      fc.assert(
        fc.property(requestArbitrary(settings), (request) => {
          const text = formatCompose(request, settings);
          const back = parseCompose(text, settings);
          assert.ok(back.ok, `${text}\n${back.ok ? '' : back.error.message}`);
          assert.deepStrictEqual(back.request, request, text);
        }),
        { numRuns: RUNS },
      );
    });
  }

  it('whatever parses, formats to text that parses to the same request', () => {
    fc.assert(
      fc.property(commandText, (input) => {
        const first = parseCompose(input);
        if (!first.ok) return;
        const text = formatCompose(first.request);
        const back = parseCompose(text);
        assert.ok(back.ok, `${input} → ${text}\n${back.ok ? '' : back.error.message}`);
        assert.deepStrictEqual(back.request, first.request, `${input} → ${text}`);
      }),
      { numRuns: RUNS * 2 },
    );
  });

  it('a tweaked request formats and parses back, with the seed kept', () => {
    const pick = fc.tuple(requestArbitrary(DEFAULT_COMPOSE_SETTINGS), fc.nat(), weight, loraName);
    fc.assert(
      fc.property(pick, ([request, i, w, lora]) => {
        fc.pre(request.bindings.length > 0);
        const chosen = request.bindings[i % request.bindings.length];
        const subject = chosen.subject;
        // A weight before '.5' in the prompt cannot be written (`@0.8.5` is refused as unreadable).
        fc.pre(w === 1 || !/^\.\d/.test(request.prompt.slice(chosen.span.end)));
        for (const tweak of [
          { kind: 'weight', subject, weight: w } as const,
          { kind: 'swap-lora', subject, lora } as const,
          { kind: 'style', style: null } as const,
        ]) {
          const r = tweakRequest(request, tweak);
          if (!r.ok) {
            assert.equal(r.error.code, 'duplicate-lora');
            continue;
          }
          assert.equal(r.request.seed, request.seed);
          assert.equal(r.request.prompt, request.prompt);
          const back = parseCompose(formatCompose(r.request));
          assert.ok(back.ok);
          assert.deepStrictEqual(back.request, r.request);
        }
      }),
      { numRuns: RUNS / 2 },
    );
  });
});

describe('the parser never throws', () => {
  it('on arbitrary unicode', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 200, size: 'medium' }), (input) => {
        assertWellFormed(input, parseCompose(input));
      }),
      { numRuns: RUNS * 3 },
    );
  });

  it('on input built from grammar fragments', () => {
    fc.assert(
      fc.property(commandText, (input) => {
        assertWellFormed(input, parseCompose(input));
      }),
      { numRuns: RUNS * 3 },
    );
  });

  it('on grammar fragments with arbitrary characters spliced in', () => {
    const spliced = fc
      .tuple(commandText, fc.string({ unit: 'binary', maxLength: 4 }), fc.nat())
      .map(
        ([text, noise, at]) =>
          text.slice(0, at % (text.length + 1)) + noise + text.slice(at % (text.length + 1)),
      );
    fc.assert(
      fc.property(spliced, (input) => {
        assertWellFormed(input, parseCompose(input));
      }),
      { numRuns: RUNS * 3 },
    );
  });
});

describe('no input is silently reinterpreted', () => {
  const dash = fc.constantFrom('—', '–', '−', '—-', '-–');

  it('options written with a look-alike dash read exactly as with --', () => {
    // Without quotes, where "--x" is text either way.
    const unquoted = commandFragment.filter((f) => !/["“”]/.test(f));
    const fragments = fc.array(fc.tuple(unquoted, fc.constantFrom(' ', '  ', '\n')), { maxLength: 12 });
    fc.assert(
      fc.property(fragments, dash, (parts, look) => {
        const text = (swap: boolean) =>
          parts.map(([f, sep]) => (swap && /^--\p{L}/u.test(f) ? look + f.slice(2) : f) + sep).join('');
        const plain = parseCompose(text(false));
        const phone = parseCompose(text(true));
        assert.equal(phone.ok, plain.ok, `${text(true)}`);
        if (plain.ok && phone.ok) assert.deepStrictEqual(phone.request, plain.request, text(true));
      }),
      { numRuns: RUNS },
    );
  });

  it('numbers around a colon (times, ratios) stay prompt text and never bind', () => {
    const numberPair = fc
      .tuple(fc.nat(9999), fc.nat(9999), fc.constantFrom('', 'pm', 'am', ',', '.'))
      .map(([a, b, end]) => `${a}:${b}${end}`);
    const plainWords = fc
      .array(fc.constantFrom('a', 'clock', 'at', 'ratio', 'poster', 'Two', 'and'), { maxLength: 3 })
      .map((w) => w.join(' '));
    fc.assert(
      fc.property(plainWords, numberPair, plainWords, (before, pair, after) => {
        const input = `cat:<tabby> ${before} ${pair} ${after}`;
        const r = parseCompose(input);
        assert.ok(r.ok, `${input}: ${r.ok ? '' : r.error.message}`);
        assert.deepEqual(
          r.request.bindings.map((b) => b.lora),
          ['tabby'],
          input,
        );
        assert.ok(r.request.prompt.includes(pair), `${input} → ${r.request.prompt}`);
      }),
      { numRuns: RUNS },
    );
  });
});
