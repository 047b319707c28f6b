// The weight form: one model for every platform's modal, and what a submission asks for.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  DEFAULT_COMPOSE_LIMITS,
  decodeWeightFormId,
  parseCompose,
  readWeightForm,
  weightForm,
  weightFormId,
} from '../../commands/compose/index.ts';

const parsed = parseCompose('cat:<tabby> penguin:<plush>@0.7 in a house style:<ink>');
assert.ok(parsed.ok);
const request = parsed.request;

describe('weight form', () => {
  it('asks for one LoRA’s weight given its slot, and for the subject too without one', () => {
    const one = weightForm('job1', request, 1, DEFAULT_COMPOSE_LIMITS);
    assert.equal(one?.id, 'weight:job1:1');
    assert.equal(one?.title, 'Weight for penguin');
    assert.deepEqual(
      one?.fields.map((f) => [f.kind, f.id, f.initial]),
      [['number', 'weight', 0.7]],
    );
    const any = weightForm('job1', request, null, DEFAULT_COMPOSE_LIMITS);
    assert.equal(any?.title, 'Change a weight');
    const choice = any?.fields[0];
    assert.ok(choice?.kind === 'choice');
    assert.deepEqual(
      choice.options.map((o) => o.value),
      ['0', '1', 'style'],
    );
    assert.equal(weightForm('job1', { ...request, style: null }, 'style', DEFAULT_COMPOSE_LIMITS), null);
  });

  it('ids name the job and the slot, and decode back', () => {
    for (const slot of [0, 12, 'style', null] as const)
      assert.deepEqual(decodeWeightFormId(weightFormId('j-1', slot)), { jobId: 'j-1', slot });
    assert.equal(decodeWeightFormId('weights:j-1'), null);
    assert.equal(decodeWeightFormId('weight:j-1:x'), null);
  });

  it('reads a submission into a tweak, or says which field to fix', () => {
    assert.deepEqual(readWeightForm(request, 0, { weight: ' 0.5 ' }), {
      ok: true,
      tweak: { kind: 'weight', subject: 'cat', weight: 0.5 },
    });
    assert.deepEqual(readWeightForm(request, null, { subject: 'style', weight: '1.2' }), {
      ok: true,
      tweak: { kind: 'style', style: { lora: 'ink', weight: 1.2 } },
    });
    const lots = readWeightForm(request, 0, { weight: 'lots' });
    assert.ok(
      !lots.ok && lots.problem.field === 'weight' && /'lots' is not a number/.test(lots.problem.message),
    );
    const none = readWeightForm(request, null, { subject: '7', weight: '1' });
    assert.ok(!none.ok && none.problem.field === 'subject');
  });
});
