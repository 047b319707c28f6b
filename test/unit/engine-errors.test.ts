// Errors across the engine thread: the engine's input errors (one base class) reach the queue as
// the user's fault, a cancellation as a cancellation, anything else as the engine's, and the
// client rebuilds each from the kind the thread sent.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { classifyError, EngineJobError, errorFromThread } from '../../bot/engine-host/messages.ts';
import { isUserError } from '../../bot/queue/index.ts';
import { MemoryBudgetError } from '../../engine/clora/memory.ts';
import { SpecError } from '../../engine/clora/spec.ts';
import { CancelledError, InputError } from '../../engine/errors.ts';
import { GraphError } from '../../engine/graph/index.ts';
import { LoraError } from '../../engine/lora/file.ts';
import { SchedulerConfigError } from '../../engine/schedulers/index.ts';
import { TokenizerFileError } from '../../engine/tokenizer/index.ts';
import { WeightsError } from '../../engine/weights/safetensors.ts';

describe('engine errors across the thread', () => {
  const userErrors = [
    new SpecError('steps must be 1 to 150'),
    new MemoryBudgetError('one branch needs 9 GiB'),
    new LoraError('cat.safetensors', 'not a LoRA'),
    new WeightsError('model.safetensors', 'truncated'),
    new TokenizerFileError('vocab.json', 'CLIP vocab.json not found'),
    new SchedulerConfigError('unknown sampler'),
  ];

  it('every error a request or its files cause is an InputError, sent as the user’s', () => {
    for (const e of userErrors) {
      assert.ok(e instanceof InputError, e.name);
      assert.deepEqual(classifyError(e), { kind: 'user', message: e.message });
    }
  });

  it('a cancellation is neither the user’s nor the engine’s; anything else is the engine’s', () => {
    assert.equal(classifyError(new CancelledError('stop')).kind, 'cancelled');
    assert.equal(classifyError(new GraphError('bad graph')).kind, 'internal');
    assert.equal(classifyError(new Error('out of memory')).kind, 'internal');
    assert.deepEqual(classifyError('thrown text'), { kind: 'internal', message: 'thrown text' });
  });

  it('the client rebuilds a UserError for the queue, an EngineJobError otherwise', () => {
    const user = errorFromThread('user', 'unknown LoRA');
    assert.ok(isUserError(user));
    assert.equal(user.message, 'unknown LoRA');
    for (const kind of ['internal', 'cancelled'] as const) {
      const e = errorFromThread(kind, 'x');
      assert.ok(e instanceof EngineJobError && e.kind === kind && !isUserError(e));
    }
  });
});
