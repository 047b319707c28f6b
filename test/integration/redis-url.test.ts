// REDIS_URL is checked before the queue opens, against the real Redis the queue tests use
// (CLORA_TEST_REDIS_URL, default redis://127.0.0.1:6379): a database number that Redis refuses
// stops start-up instead of falling back to database 0, and so does a Redis that cannot be reached.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { startApp } from '../../bot/app.ts';
import { createLogger } from '../../bot/log.ts';
import { BullQueue, startBullRunner } from '../../bot/queue/index.ts';
import { StartProblem } from '../../bot/start-problem.ts';
import { loadConfig } from '../../config/index.ts';

const base = new URL(process.env.CLORA_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379');
const withDatabase = (db: number) => `${base.protocol}//${base.host}/${db}`;
const settings = { limits: { perUser: 1, perScope: 1 }, resultTtlMs: 60_000 };
const work = mkdtempSync(join(tmpdir(), 'clora-redis-url-'));
after(() => rmSync(work, { recursive: true, force: true }));

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

describe('REDIS_URL at start-up', { timeout: 60_000 }, () => {
  test('a database number Redis refuses stops the queue, the worker and the bot, naming it', async () => {
    const url = withDatabase(999);
    const refused = (e: unknown) =>
      e instanceof StartProblem &&
      /^REDIS_URL names database 999, which the Redis at [^ ]+ refuses \(ERR DB index is out of range\)/.test(
        e.message,
      );
    await assert.rejects(
      BullQueue.open({ redisUrl: url, queueName: `q-${randomUUID()}`, ...settings }),
      refused,
    );
    await assert.rejects(
      startBullRunner(async () => ({ value: null }), { redisUrl: url, queueName: `q-${randomUUID()}` }),
      refused,
    );
    await assert.rejects(
      startApp(loadConfig({ REDIS_URL: url, LORA_DIR: work, LOG_LEVEL: 'silent' }), {
        log: createLogger('silent'),
      }),
      refused,
    );
  });

  test('an unreachable Redis is named as such', async () => {
    const url = `redis://127.0.0.1:${await closedPort()}`;
    await assert.rejects(
      BullQueue.open({ redisUrl: url, ...settings }),
      (e: unknown) =>
        e instanceof StartProblem && /^REDIS_URL: cannot reach Redis at 127\.0\.0\.1:\d+ \(/.test(e.message),
    );
  });

  test('a database Redis has is the one the queue uses', async () => {
    const queueName = `q-${randomUUID()}`;
    const queue = await BullQueue.open<{ n: number }, null>({
      redisUrl: withDatabase(3),
      queueName,
      ...settings,
    });
    try {
      const job = await queue.enqueue({ n: 1 }, { userId: 'u', scope: 's' });
      assert.ok(job.ok);
      const db3 = new Redis(withDatabase(3));
      const db0 = new Redis(withDatabase(0));
      try {
        assert.ok((await db3.keys(`*${queueName}*`)).length > 0, 'the job is in database 3');
        assert.deepEqual(await db0.keys(`*${queueName}*`), [], 'and nothing in database 0');
        await db3.del(...(await db3.keys(`*${queueName}*`)));
      } finally {
        db3.disconnect();
        db0.disconnect();
      }
    } finally {
      await queue.close();
    }
  });
});
