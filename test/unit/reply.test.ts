// The platform-neutral reply model: action ids, progress, limits, help, error replies and
// the tweak selects.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  type ComposeAction,
  composeResultRow,
  decodeActionId,
  encodeActionId,
  MAX_JOB_ID_LENGTH,
  progressReply,
  SIMPLE_ACTION_KINDS,
} from '../../commands/actions.ts';
import {
  COMPOSE_EXAMPLES,
  COMPOSE_OPTIONS,
  composeErrorReply,
  helpReply,
  NO_STYLE_VALUE,
  parseCompose,
  tweakChoices,
  tweakFromChoice,
  tweakLoraRow,
  tweakRequest,
  tweakSlotRow,
} from '../../commands/compose/index.ts';
import {
  checkReply,
  describeProgress,
  formatDuration,
  type MessageReply,
  pageOf,
  progressBar,
  REPLY_LIMITS,
  type ReplyRow,
} from '../../commands/reply.ts';

const jobId = fc.stringMatching(new RegExp(`^[A-Za-z0-9_-]{1,${MAX_JOB_ID_LENGTH}}$`));
const action: fc.Arbitrary<ComposeAction> = fc
  .oneof(
    fc.record({ kind: fc.constantFrom(...SIMPLE_ACTION_KINDS), jobId }),
    fc.record({ kind: fc.constant('tweak' as const), jobId, slot: fc.constant(null), page: fc.constant(0) }),
    fc.record({
      kind: fc.constant('tweak' as const),
      jobId,
      slot: fc.oneof(fc.integer({ min: 0, max: 99 }), fc.constant('style' as const)),
      page: fc.integer({ min: 0, max: 9999 }),
    }),
  )
  .map((a) => ({ ...a })); // fc.record builds null-prototype objects; decode returns plain ones

function parsedRequest(input: string) {
  const r = parseCompose(input);
  if (!r.ok) assert.fail(r.error.message);
  return r.request;
}

describe('action ids', () => {
  it('decode(encode(a)) is a, and every id fits a Discord custom_id', () => {
    fc.assert(
      fc.property(action, (a) => {
        const id = encodeActionId(a);
        assert.ok(id.length <= REPLY_LIMITS.idLength, id);
        assert.deepStrictEqual(decodeActionId(id), a);
      }),
      { numRuns: 500 },
    );
  });

  it('the longest id there can be is within 100 characters', () => {
    const longest = encodeActionId({
      kind: 'tweak',
      jobId: 'j'.repeat(MAX_JOB_ID_LENGTH),
      slot: 'style',
      page: 9999,
    });
    assert.equal(longest.length, 81);
  });

  it('reads as kind:jobId', () => {
    assert.equal(encodeActionId({ kind: 'rerun', jobId: '1234' }), 'rerun:1234');
    assert.equal(encodeActionId({ kind: 'tweak', jobId: 'ab', slot: null, page: 0 }), 'tweak:ab');
    assert.equal(encodeActionId({ kind: 'tweak', jobId: 'ab', slot: 2, page: 0 }), 'tweak:ab:2');
    assert.equal(encodeActionId({ kind: 'tweak', jobId: 'ab', slot: 'style', page: 3 }), 'tweak:ab:style:3');
    assert.deepEqual(decodeActionId('cancel:7f3e-9'), { kind: 'cancel', jobId: '7f3e-9' });
  });

  it('ids we would not write decode to null, and any id that decodes is canonical', () => {
    for (const id of [
      '',
      'rerun',
      'rerun:',
      'rerun:a:b',
      'nope:1',
      'tweak:a:01',
      'tweak:a:100',
      'tweak:a:1:0',
      'seed:a b',
    ]) {
      assert.equal(decodeActionId(id), null, id);
    }
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 120 }),
          action.map(encodeActionId).map((id) => `${id}:`),
        ),
        (id) => {
          const a = decodeActionId(id);
          if (a !== null) assert.equal(encodeActionId(a), id);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('refuses job ids and slots no id can carry', () => {
    assert.throws(
      () => encodeActionId({ kind: 'seed', jobId: 'x'.repeat(MAX_JOB_ID_LENGTH + 1) }),
      RangeError,
    );
    assert.throws(() => encodeActionId({ kind: 'seed', jobId: 'a:b' }), RangeError);
    assert.throws(() => encodeActionId({ kind: 'tweak', jobId: 'a', slot: 1.5, page: 0 }), RangeError);
    assert.throws(() => encodeActionId({ kind: 'tweak', jobId: 'a', slot: null, page: 2 }), RangeError);
  });
});

describe('progress', () => {
  it('says where a job is, one line for every platform', () => {
    assert.equal(
      describeProgress({ state: 'queued', position: 1, etaSeconds: null }),
      'Queued: next in line',
    );
    assert.equal(
      describeProgress({ state: 'queued', position: 3, etaSeconds: 95 }),
      'Queued: 3rd in line, starts in about 1 min 35 s',
    );
    assert.equal(
      describeProgress({ state: 'running', step: 12, totalSteps: 30, etaSeconds: 20, preview: null }),
      'Step 12/30 ▰▰▰▰▱▱▱▱▱▱ about 20 s left',
    );
    assert.equal(describeProgress({ state: 'done', elapsedSeconds: 3725 }), 'Done in 1 h 2 min');
    assert.equal(
      describeProgress({ state: 'failed', reason: 'out of GPU memory' }),
      'Failed: out of GPU memory',
    );
    assert.equal(describeProgress({ state: 'cancelled', by: '@ana' }), 'Cancelled by @ana');
  });

  it('durations, bars and ordinals at their edges', () => {
    assert.equal(formatDuration(0), '0 s');
    assert.equal(formatDuration(120), '2 min');
    assert.equal(formatDuration(3600), '1 h');
    assert.equal(progressBar(0, 0), '▱▱▱▱▱▱▱▱▱▱');
    assert.equal(progressBar(50, 30, 4), '▰▰▰▰');
    assert.match(describeProgress({ state: 'queued', position: 12, etaSeconds: null }), /12th/);
    assert.match(describeProgress({ state: 'queued', position: 22, etaSeconds: null }), /22nd/);
  });

  it('offers Cancel only while the job can still be cancelled', () => {
    const queued = progressReply('job1', { state: 'queued', position: 2, etaSeconds: 10 });
    const row = queued.rows?.[0];
    assert.ok(row?.kind === 'buttons');
    assert.deepEqual(decodeActionId(row.buttons[0].id), { kind: 'cancel', jobId: 'job1' });
    assert.equal(row.buttons[0].style, 'danger');
    assert.ok(
      progressReply('job1', { state: 'running', step: 1, totalSteps: 2, etaSeconds: null, preview: null })
        .rows,
    );
    assert.equal(progressReply('job1', { state: 'done', elapsedSeconds: 3 }).rows, undefined);
    assert.equal(progressReply('job1', { state: 'cancelled', by: null }).rows, undefined);
  });
});

describe('result buttons', () => {
  it('one row: rerun, new seed, masks, merge, tweak', () => {
    const row = composeResultRow('42', { masks: true, merge: false });
    assert.ok(row.kind === 'buttons');
    assert.deepEqual(
      row.buttons.map((b) => decodeActionId(b.id)?.kind),
      ['rerun', 'seed', 'masks', 'merge', 'tweak'],
    );
    assert.equal(row.buttons[2].disabled, true);
    assert.equal(row.buttons[3].disabled, undefined);
    assert.deepEqual(checkReply({ kind: 'message', text: 'done', rows: [row], ephemeral: false }), []);
  });
});

describe('checkReply', () => {
  const button = (id: string) => ({ id, label: 'x', style: 'secondary' as const });
  it('finds what some platform would refuse', () => {
    const reply: MessageReply = {
      kind: 'message',
      ephemeral: false,
      images: [],
      card: { title: 't', fields: [], tone: 'brand', image: 'missing.png' },
      rows: [
        { kind: 'buttons', buttons: ['a', 'b', 'c', 'd', 'e', 'f'].map(button) },
        { kind: 'buttons', buttons: [button('a'), button('x'.repeat(101))] },
        {
          kind: 'select',
          select: {
            id: 's',
            placeholder: 'p',
            options: Array.from({ length: 26 }, (_, i) => ({ label: `${i}`, value: `${i}` })),
          },
        },
      ],
    };
    const problems = checkReply(reply);
    assert.equal(problems.length, 5, problems.join('\n'));
    assert.ok(problems.some((p) => /6 buttons/.test(p)));
    assert.ok(problems.some((p) => /used twice/.test(p)));
    assert.ok(problems.some((p) => /1–100 characters/.test(p)));
    assert.ok(problems.some((p) => /26 options/.test(p)));
    assert.ok(problems.some((p) => /missing\.png/.test(p)));
  });

  it('pages a long list', () => {
    const names = Array.from({ length: 60 }, (_, i) => `n${i}`);
    assert.deepEqual(pageOf(names, 0).items, names.slice(0, 25));
    const last = pageOf(names, 9);
    assert.equal(last.page, 2);
    assert.equal(last.pageCount, 3);
    assert.deepEqual(last.items, names.slice(50));
    assert.deepEqual(pageOf([], 0), { items: [], page: 0, pageCount: 1 });
  });
});

describe('help', () => {
  it('every example parses, and the help shows the prompt each one makes', () => {
    const help = helpReply();
    const text = JSON.stringify(help);
    for (const example of Object.values(COMPOSE_EXAMPLES)) {
      const parsed = parseCompose(example);
      assert.ok(parsed.ok, example);
      assert.ok(
        text.includes(JSON.stringify(`“${parsed.request.prompt}”`).slice(1, -1)),
        parsed.request.prompt,
      );
    }
    assert.ok(text.includes('“a cat and a penguin in a house”'));
  });

  it('lists every option, is only for the asker and fits every platform', () => {
    const help = helpReply();
    const text = JSON.stringify(help);
    for (const option of COMPOSE_OPTIONS)
      assert.ok(text.includes(option.usage.replace(/"/g, '\\"')), option.usage);
    assert.equal(help.ephemeral, true);
    assert.deepEqual(checkReply(help), []);
  });
});

describe('error replies', () => {
  it('show the message, point at the span and offer the fix', () => {
    const input = '/compose cat:<tabby> --sede 3';
    const result = parseCompose(input);
    assert.ok(!result.ok);
    const reply = composeErrorReply(input, result.error);
    assert.equal(reply.ephemeral, true);
    assert.equal(
      reply.text,
      [
        '⚠️ unknown option --sede — did you mean --seed or --size?',
        '```',
        '/compose cat:<tabby> --sede 3',
        '                     ^^^^^^',
        '```',
        'Try: `/compose cat:<tabby> --seed 3`',
      ].join('\n'),
    );
  });
});

describe('tweak selects', () => {
  const request = parsedRequest('cat:<tabby> penguin:<plush>@0.7 in a house --seed 5 style:<wc>');
  const names = Array.from({ length: 60 }, (_, i) => `lora-${i}`).concat(['tabby', 'y'.repeat(101)]);

  function select(row: ReplyRow) {
    assert.ok(row.kind === 'select');
    return row.select;
  }

  it('the slot menu lists each subject and the style', () => {
    const s = select(tweakSlotRow('j9', request));
    assert.deepEqual(
      s.options.map((o) => [o.label, o.value]),
      [
        ['cat', '0'],
        ['penguin', '1'],
        ['style', 'style'],
      ],
    );
    assert.deepEqual(decodeActionId(s.id), { kind: 'tweak', jobId: 'j9', slot: null, page: 0 });
  });

  it('the LoRA list pages, marks the current LoRA and leaves out names too long to select', () => {
    const first = select(tweakLoraRow('j9', 0, request, names, 0));
    assert.equal(first.options.length, 25);
    assert.deepEqual(first.paging, { page: 0, pageCount: 3, previousId: null, nextId: 'tweak:j9:0:1' });
    const last = select(tweakLoraRow('j9', 0, request, names, 2));
    assert.deepEqual(
      last.options.map((o) => o.value),
      [...names.slice(50, 60), 'tabby'],
    );
    assert.equal(last.options.at(-1)?.selected, true);
    assert.equal(last.paging?.previousId, 'tweak:j9:0:1');
    assert.equal(last.paging?.nextId, null);
    assert.deepEqual(decodeActionId(last.id), { kind: 'tweak', jobId: 'j9', slot: 0, page: 2 });
    for (const page of [0, 1, 2]) {
      assert.deepEqual(
        checkReply({ kind: 'message', ephemeral: true, rows: [tweakLoraRow('j9', 0, request, names, page)] }),
        [],
      );
    }
  });

  it('offers only valid choices: never a LoRA another subject or the style already uses', () => {
    const all = ['tabby', 'plush', 'wc', 'ink', 'PLUSH-2'];
    assert.deepEqual(tweakChoices(0, request, all), ['tabby', 'ink', 'PLUSH-2']);
    assert.deepEqual(tweakChoices(1, request, all), ['plush', 'ink', 'PLUSH-2']);
    assert.deepEqual(tweakChoices('style', request, all), [NO_STYLE_VALUE, 'wc', 'ink', 'PLUSH-2']);
    // Every offered choice is a tweak that works.
    for (const slot of [0, 1, 'style'] as const) {
      for (const value of tweakChoices(slot, request, all)) {
        const tweak = tweakFromChoice(request, slot, value);
        assert.ok(tweak && tweakRequest(request, tweak).ok, `${slot} → ${value}`);
      }
    }
    // Dropping the only LoRA would leave nothing to compose.
    const styleOnly = parsedRequest('a house style:<wc>');
    assert.deepEqual(tweakChoices('style', styleOnly, all), ['tabby', 'plush', 'wc', 'ink', 'PLUSH-2']);
    assert.ok(
      !select(tweakLoraRow('j9', 0, request, all, 0)).options.some((o) => o.value === 'plush'),
      'the menu shows the same choices',
    );
  });

  it('a choice becomes a tweak of the same request', () => {
    const swap = tweakFromChoice(request, 1, 'lora-3');
    assert.deepEqual(swap, { kind: 'swap-lora', subject: 'penguin', lora: 'lora-3' });
    const r = tweakRequest(request, swap!);
    assert.ok(r.ok);
    assert.equal(r.request.bindings[1].lora, 'lora-3');
    assert.equal(r.request.bindings[1].weight, 0.7);
    assert.equal(r.request.seed, 5);

    const styleMenu = select(tweakLoraRow('j9', 'style', request, names, 0));
    assert.equal(styleMenu.options[0].value, NO_STYLE_VALUE);
    assert.deepEqual(tweakFromChoice(request, 'style', NO_STYLE_VALUE), { kind: 'style', style: null });
    assert.deepEqual(tweakFromChoice(request, 'style', 'ink'), {
      kind: 'style',
      style: { lora: 'ink', weight: 1 },
    });
    assert.equal(tweakFromChoice(request, 7, 'x'), null);
  });
});
