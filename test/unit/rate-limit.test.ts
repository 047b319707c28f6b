// The per-user rate limit both chat adapters apply (commands/rate-limit.ts): a token bucket
// per user, with the map of users bounded.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { UserRateLimit } from '../../commands/rate-limit.ts';

describe('UserRateLimit', () => {
  test('a burst, then refills at the set rate; users do not share buckets', () => {
    let now = 0;
    const limit = new UserRateLimit({ burst: 2, perSecond: 0.5, now: () => now });
    assert.ok(limit.take('U1').ok);
    assert.ok(limit.take('U1').ok);
    const third = limit.take('U1');
    assert.ok(!third.ok);
    assert.equal(third.retryAfterMs, 2000);
    assert.match(third.reply.text ?? '', /Slow down.*\nTry again in 2 seconds\./s);
    assert.ok(third.reply.ephemeral);
    assert.ok(limit.take('U2').ok, 'another user has a full bucket');
    now = 2000;
    assert.ok(limit.take('U1').ok, 'one token back after 2 s');
    assert.ok(!limit.take('U1').ok);
  });

  test('the state stays bounded however many users pass, and busy users keep their limit', () => {
    let now = 0;
    const limit = new UserRateLimit({ burst: 2, perSecond: 1, maxUsers: 100, now: () => now });
    // A user who used up the bucket is not forgotten while others come and go.
    limit.take('busy');
    limit.take('busy');
    for (let i = 0; i < 5000; i++) {
      limit.take(`U${i}`);
      if (i % 50 === 0) assert.ok(!limit.take('busy').ok, `busy still limited after ${i} others`);
      assert.ok(limit.size <= 100, `${limit.size} users kept`);
    }
    now = 10_000;
    for (let i = 0; i < 200; i++) limit.take(`V${i}`);
    assert.ok(limit.size <= 100);
  });
});
