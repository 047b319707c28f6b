// The bot's commands end to end on the in-process queue and the engine thread with the
// tiny model: compose → progress → image and buttons; rerun gives the same bytes, a new
// seed another image; masks, merge, tweak and cancel; the model's own size by default and
// non-square sizes with their masks; user errors never reach the queue.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type App, startApp } from '../../bot/app.ts';
import { createLogger } from '../../bot/log.ts';
import { followJob } from '../../commands/follow.ts';
import type { MessageReply, ProgressReply, Reply } from '../../commands/reply.ts';
import type { ChatContext } from '../../commands/service.ts';
import { loadConfig } from '../../config/index.ts';
import { fixtureDir, fixtureLoraFolder } from '../fixtures.ts';

const fixture = fixtureDir();
const work = mkdtempSync(join(tmpdir(), 'clora-service-'));
const loraDir = fixtureLoraFolder(work);

const alice: ChatContext = {
  platform: 'cli',
  userId: 'alice',
  userName: 'Alice',
  scope: 'test',
  channel: 'c1',
  isAdmin: false,
};
const bob: ChatContext = { ...alice, userId: 'bob', userName: 'Bob' };
const FAST = '--steps 3 --size 256x256';

let app: App;
before(async () => {
  const config = loadConfig({
    MODEL_PATH: join(fixture, 'model'),
    LORA_DIR: loraDir,
    CACHE_DIR: join(work, 'cache'),
    USER_CONCURRENCY: '3',
    GUIDANCE_ITERATIONS: '2',
  });
  app = await startApp(config, { log: createLogger('silent') });
  await app.library.settled();
  await app.engine!.ready();
});
after(async () => {
  await app?.close();
  rmSync(work, { recursive: true, force: true });
});

/** Runs a command and waits for its job's final reply, collecting the updates on the way. */
async function finish(outcome: { reply: Reply; jobId?: string }) {
  assert.ok(outcome.jobId, `no job was started: ${JSON.stringify(outcome.reply).slice(0, 300)}`);
  const updates: Reply[] = [];
  let final: Reply | undefined;
  const follow = followJob(app.queue, app.commands, outcome.jobId, (r) => void updates.push(r), {
    minIntervalMs: 0,
    onFinal: (r) => {
      final = r;
    },
  });
  await follow.done;
  return { jobId: outcome.jobId, updates, final: final as MessageReply, reply: final as Reply };
}

const imageOf = (r: MessageReply) => Buffer.from(r.images![0].data);
const seedOf = (r: MessageReply) => r.card!.fields.find((f) => f.name === 'Seed')!.value;

describe('compose through the queue and the engine thread', () => {
  let first: Awaited<ReturnType<typeof finish>>;

  it('queues a job, reports progress and ends with the image and its buttons', async () => {
    const outcome = await app.commands.compose(
      `cat:<tabby> penguin:<plush> in a house --seed 5 ${FAST}`,
      alice,
    );
    assert.equal(outcome.reply.kind, 'progress');
    assert.ok(['queued', 'running'].includes((outcome.reply as ProgressReply).progress.state));
    first = await finish(outcome);
    assert.ok(
      first.updates.some((u) => u.kind === 'progress' && u.progress.state === 'running'),
      'no running update',
    );
    const r = first.final;
    assert.equal(r.kind, 'message');
    assert.equal(r.images?.[0].mime, 'image/png');
    assert.deepEqual([...imageOf(r).subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    assert.equal(seedOf(r), '5');
    assert.deepEqual(r.rows?.[0].kind === 'buttons' ? r.rows[0].buttons.map((b) => b.label) : [], [
      'Rerun',
      'New seed',
      'Show masks',
      'Compare with merge',
      'Tweak',
    ]);
  });

  it('reruns with the same seed into identical bytes, and a new seed into another image', async () => {
    const rerun = await finish(await app.commands.action(`rerun:${first.jobId}`, bob));
    assert.ok(imageOf(rerun.final).equals(imageOf(first.final)), 'rerun changed the image');
    const fresh = await finish(await app.commands.action(`seed:${first.jobId}`, bob));
    assert.notEqual(seedOf(fresh.final), '5');
    assert.ok(!imageOf(fresh.final).equals(imageOf(first.final)));
  });

  it('shows the masks and the per-token maps of a finished job', async () => {
    const masks = await app.commands.action(`masks:${first.jobId}`, bob);
    const reply = masks.reply as MessageReply;
    assert.equal(reply.images?.length, 2);
    assert.ok(reply.images!.every((i) => i.data.length > 100));
  });

  it('compares with plain merging and tweaks one LoRA with the same seed', async () => {
    const merged = await finish(await app.commands.action(`merge:${first.jobId}`, alice));
    assert.equal(seedOf(merged.final), '5');
    assert.match(merged.final.card!.footer!, /merge/);
    // Beside its own picture, one sheet: merge | CLoRA | CLoRA's masks, the CLoRA job's pictures on the same seed.
    const sheet = merged.final.images?.find((i) => i.filename.startsWith('compare-'));
    assert.ok(sheet, JSON.stringify(merged.final.images?.map((i) => i.filename)));
    assert.match(sheet.alt, /merge beside CLoRA on the same seed \(5\)/);
    const { decodePicture } = await import('../../bot/render/encode.ts');
    const [own, compared] = await Promise.all([
      decodePicture(imageOf(merged.final)),
      decodePicture(sheet.data),
    ]);
    // Three panels, each at least 256 px wide (small pictures are enlarged for their titles).
    const panel = Math.max(256, own.width);
    assert.ok(compared.width >= 3 * panel, `sheet ${compared.width} px wide for ${own.width} px pictures`);
    const pick = await app.commands.action(`tweak:${first.jobId}`, alice);
    assert.equal((pick.reply as MessageReply).rows?.[0].kind, 'select');
    const slot = await app.commands.action(`tweak:${first.jobId}`, alice, '0');
    const select = (slot.reply as MessageReply).rows![0];
    assert.ok(select.kind === 'select');
    // plush draws the penguin, so the cat is not offered it; only the current tabby is left.
    assert.deepEqual(
      select.select.options.map((o) => o.value),
      ['tabby'],
    );
    // Forced through an old or crafted id, the clash is still a user error, no job.
    const clash = await app.commands.action(`tweak:${first.jobId}:0`, alice, 'plush');
    assert.equal(clash.jobId, undefined);
    assert.match(JSON.stringify(clash.reply), /plush/);
  });

  it('lets only the owner (or an admin) cancel, and cancels a running job', async () => {
    const outcome = await app.commands.compose(
      `cat:<tabby> penguin:<plush> in a house --steps 60 --size 256x256`,
      alice,
    );
    const jobId = outcome.jobId!;
    await new Promise<void>((resolve) => {
      const off = app.queue.on('progress', (e) => {
        if (e.id === jobId) {
          off();
          resolve();
        }
      });
    });
    const denied = await app.commands.action(`cancel:${jobId}`, bob);
    assert.match(JSON.stringify(denied.reply), /Only the person who started a job/);
    const cancelled = await app.commands.action(`cancel:${jobId}`, alice);
    assert.equal(cancelled.reply.kind, 'progress');
    const end = await finish({ reply: cancelled.reply, jobId });
    assert.equal((await app.queue.get(jobId))?.state, 'cancelled');
    assert.ok(
      end.reply.kind === 'progress' && end.reply.progress.state === 'cancelled',
      'the final reply is not "cancelled"',
    );
  });

  it('composes at the model’s own size without --size, and wide or tall pictures with their masks', async () => {
    const sizeOf = (r: MessageReply) => r.card!.fields.find((f) => f.name === 'Size')!.value;
    const pngSize = (data: Uint8Array) => {
      const png = Buffer.from(data);
      return [png.readUInt32BE(16), png.readUInt32BE(20)];
    };
    const native = await finish(
      await app.commands.compose('cat:<tabby> penguin:<plush> in a house --seed 3 --steps 2', alice),
    );
    assert.equal(sizeOf(native.final), '256×256');
    assert.deepEqual(pngSize(native.final.images![0].data), [256, 256]);
    for (const [width, height] of [
      [384, 256],
      [256, 384],
    ]) {
      const done = await finish(
        await app.commands.compose(
          `cat:<tabby> penguin:<plush> in a house --seed 3 --steps 2 --size ${width}x${height} --masks`,
          alice,
        ),
      );
      const r = done.final;
      assert.equal(sizeOf(r), `${width}×${height}`);
      assert.deepEqual(pngSize(r.images![0].data), [width, height]);
      assert.equal(r.images?.length, 2, 'no mask picture');
      const [mw, mh] = pngSize(r.images![1].data);
      // the picture with its overlays, a legend below it
      assert.ok(mw === width && mh >= height, `mask picture ${mw}×${mh} for ${width}×${height}`);
      const value = (await app.queue.get(done.jobId))!.result!.value;
      const shares = value.maskShares!;
      assert.equal(shares.length, 3);
      assert.ok(shares.every((m) => Number.isFinite(m.share)));
      // every cell of the grid has an owner (LoRAs may overlap)
      assert.ok(shares.reduce((a, m) => a + m.share, 0) >= 1 - 1e-9, 'the masks leave cells unowned');
      assert.ok(value.loss && Number.isFinite(value.loss.first) && Number.isFinite(value.loss.last));
    }
  });

  it('answers user errors at once, ephemerally, without a job', async () => {
    const typo = await app.commands.compose('cat:<tabbby> in a house', alice);
    assert.equal(typo.jobId, undefined);
    assert.equal((typo.reply as MessageReply).ephemeral, true);
    assert.match(JSON.stringify(typo.reply), /tabby/);
    const size = await app.commands.compose('cat:<tabby> --size 100x100', alice);
    assert.equal(size.jobId, undefined);
    assert.match(JSON.stringify(size.reply), /64/);
    const expired = await app.commands.action('rerun:no-such-job', alice);
    assert.match(JSON.stringify(expired.reply), /expired/);
  });
});

describe('without a model', () => {
  it('answers /compose with how to configure one, and still lists LoRAs', async () => {
    const bare = await startApp(loadConfig({ LORA_DIR: loraDir, CACHE_DIR: join(work, 'cache2') }), {
      log: createLogger('silent'),
    });
    try {
      const reply = await bare.commands.compose('cat:<tabby> in a house', alice);
      assert.equal(reply.jobId, undefined);
      assert.match(JSON.stringify(reply.reply), /MODEL_PATH/);
      await bare.library.settled();
      assert.match(JSON.stringify(bare.commands.loras()), /tabby/);
    } finally {
      await bare.close();
    }
  });
});
