// The Slack adapter end to end: the real bot (commands, queue, engine on the tiny fixture
// model) behind Bolt, against a stand-in for Slack's servers (test/standins/slack.ts) that
// signs the requests Slack would send and records the Web API calls the bot makes.
// HTTP mode covers the whole flow; Socket Mode runs commands and buttons over its WebSocket.
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { HTTPReceiver } from '@slack/bolt';
import sharp from 'sharp';
import { type App, startApp } from '../../bot/app.ts';
import { createLogger } from '../../bot/log.ts';
import { checkBlocks, mrkdwn, renderReply, SLACK_LIMITS, type SlackMessage } from '../../bot/slack/blocks.ts';
import { type SlackAdapter, startSlack } from '../../bot/slack/index.ts';
import { SLASH_COMMANDS } from '../../bot/slack/listeners/commands/index.ts';
import { boltLogger } from '../../bot/slack/logger.ts';
import { isSlackFileUrl } from '../../bot/slack/lora-add.ts';
import { ChannelPacer } from '../../bot/slack/pacer.ts';
import { boltOptions } from '../../bot/slack/receiver.ts';
import type { MessageReply } from '../../commands/reply.ts';
import { COMMAND_TABLE } from '../../commands/table.ts';
import { loadConfig } from '../../config/index.ts';
import { fixtureDir, fixtureLoraFolder, repoRoot } from '../fixtures.ts';
import { type SlackBlock, SlackStandIn, type StoredMessage } from '../standins/slack.ts';

const BOT_TOKEN = 'xoxb-1111111111-2222222222-standinBotTokenValue';
const APP_TOKEN = 'xapp-1-A0STANDIN-3333333333-standinAppTokenValue';
const SIGNING_SECRET = 'standin-signing-secret-5f0c8e1a9b';
const SECRETS = [BOT_TOKEN, APP_TOKEN, SIGNING_SECRET];

const CHANNEL = 'C0GENERAL';
const OUTSIDE = 'C0NOTJOINED';
const ALICE = 'U0ALICE';
const BOB = 'U0BOB';
const ADMIN = 'U0ADMIN';
const CAROL = 'U0CAROL';

// Every log line the bot writes is captured (and kept off the test output unless it is a
// warning or worse), so the secrets check below sees exactly what an operator's log would.
const logLines: string[] = [];
const LOG_LINE = /^\d{4}-\d\d-\d\dT[\d:.]+Z (\w+)\s/;
for (const stream of [process.stdout, process.stderr]) {
  const write = stream.write.bind(stream) as (chunk: unknown, ...rest: unknown[]) => boolean;
  stream.write = ((chunk: unknown, ...rest: unknown[]) => {
    if (typeof chunk === 'string') {
      const level = LOG_LINE.exec(chunk)?.[1];
      if (level !== undefined) {
        logLines.push(chunk);
        if (level === 'debug' || level === 'info') return true;
      }
    }
    return write(chunk, ...rest);
  }) as typeof stream.write;
}

function actionIds(message: StoredMessage): string[] {
  return message.blocks
    .filter((b) => b.type === 'actions')
    .flatMap((b) => (b.elements as { action_id: string }[]).map((e) => e.action_id));
}

function idOn(message: StoredMessage, prefix: string): string {
  const id = actionIds(message).find((a) => a.startsWith(prefix));
  assert.ok(id, `no ${prefix}… element on the message; it has ${actionIds(message).join(', ')}`);
  return id;
}

function textOf(message: { blocks: SlackBlock[]; text: string }): string {
  const parts: string[] = [message.text];
  const walk = (v: unknown) => {
    if (typeof v === 'string') parts.push(v);
    else if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') Object.values(v).forEach(walk);
  };
  walk(message.blocks);
  return parts.join('\n');
}

/** `<…>` in mrkdwn is a link or mention to Slack: anything else must have been escaped. */
function assertEscaped(message: { blocks: SlackBlock[] }): void {
  for (const block of message.blocks) {
    const texts = [
      block.text,
      ...((block.fields as unknown[]) ?? []),
      ...((block.elements as unknown[]) ?? []),
    ];
    for (const t of texts) {
      const obj = t as { type?: string; text?: string } | undefined;
      if (obj?.type !== 'mrkdwn' || obj.text === undefined) continue;
      for (const m of obj.text.matchAll(/<([^>]*)>/g))
        assert.match(
          m[1],
          /^(@[UW][A-Z0-9]+|#C[A-Z0-9]+|!\w+|https?:\/\/)/,
          `unescaped <${m[1]}> in ${obj.text}`,
        );
    }
  }
}

/** The small line above a message: who asked, and for a rerun, what kind. */
function headingOf(message: StoredMessage): string {
  const first = message.blocks[0] as { type: string; elements?: { text?: string }[] };
  assert.equal(first.type, 'context');
  return first.elements?.[0]?.text ?? '';
}

async function png(bytes: Buffer | undefined): Promise<{ width: number; height: number }> {
  assert.ok(bytes, 'the stand-in received no bytes');
  const meta = await sharp(bytes).metadata();
  assert.equal(meta.format, 'png');
  return { width: meta.width ?? 0, height: meta.height ?? 0 };
}

describe('Slack adapter (Bolt) against a Slack stand-in', { timeout: 240_000 }, () => {
  let standIn: SlackStandIn;
  let app: App;
  let http: SlackAdapter;
  let socket: SlackAdapter | undefined;
  let events: string;
  let work: string;
  const enqueued: string[] = [];

  before(async () => {
    standIn = await SlackStandIn.start({
      botToken: BOT_TOKEN,
      appToken: APP_TOKEN,
      signingSecret: SIGNING_SECRET,
      channels: [CHANNEL],
      admins: [ADMIN],
    });
    const fx = fixtureDir();
    work = mkdtempSync(join(tmpdir(), 'clora-slack-'));
    const loras = fixtureLoraFolder(work);
    // Enough LoRAs for /loras to need a second page (25 a page).
    for (let i = 1; i <= 27; i++)
      copyFileSync(
        join(fx, 'loras', 'lora_i_kohya_unet_te.safetensors'),
        join(loras, `extra-${String(i).padStart(2, '0')}.safetensors`),
      );
    await sharp({ create: { width: 48, height: 48, channels: 3, background: { r: 230, g: 140, b: 40 } } })
      .png()
      .toFile(join(loras, 'tabby.preview.png'));
    const config = loadConfig({
      MODEL_PATH: join(fx, 'model'),
      LORA_DIR: loras,
      CACHE_DIR: join(work, 'cache'),
      SLACK_BOT_TOKEN: BOT_TOKEN,
      SLACK_SIGNING_SECRET: SIGNING_SECRET,
      SLACK_API_URL: standIn.apiUrl,
      LOG_LEVEL: 'debug',
      USER_CONCURRENCY: '1',
    });
    app = await startApp(config);
    const enqueue = app.queue.enqueue.bind(app.queue);
    app.queue.enqueue = async (data, options) => {
      const outcome = await enqueue(data, options);
      if (outcome.ok) enqueued.push(outcome.id);
      return outcome;
    };
    http = await startSlack(app, {
      port: 0,
      host: '127.0.0.1',
      rateLimit: { burst: 15, perSecond: 15 / 60 },
    });
    events = `http://127.0.0.1:${http.port}/slack/events`;
    await app.engine?.ready();
  });

  after(async () => {
    await socket?.stop();
    await http?.stop();
    await app?.close();
    await standIn?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  /** Sends a signed slash command; returns the HTTP answer. */
  const command = (name: string, text: string, user = ALICE, channel = CHANNEL) =>
    standIn.deliver(events, standIn.slashCommand(name, text, { user, channel }));

  const press = (message: StoredMessage, actionId: string, user = ALICE, value?: string) =>
    standIn.deliver(events, { payload: standIn.blockActions(message, actionId, user, value) });

  /** The next message in the channel carrying files, posted after message number `from`. */
  const nextUpload = (from: number, what: string, channel = CHANNEL) =>
    standIn.waitFor(what, () =>
      standIn.messages.slice(from).find((m) => m.channel === channel && m.files.length > 0),
    );

  const nextEphemeral = (from: number, user: string, what: string) =>
    standIn.waitFor(what, () => standIn.messages.slice(from).find((m) => m.ephemeralTo === user));

  test('refuses badly signed and stale requests with 401 and starts nothing', async () => {
    const calls = standIn.calls.length;
    const jobs = enqueued.length;
    const body = standIn.slashCommand('/compose', 'cat:<tabby> in a house --steps 1', {
      user: ALICE,
      channel: CHANNEL,
    });
    const forged = await standIn.deliver(events, body, { secret: 'not-the-signing-secret' });
    assert.equal(forged.status, 401);
    const garbled = await standIn.deliver(events, body, { signature: 'v0=00' });
    assert.equal(garbled.status, 401);
    const stale = await standIn.deliver(events, body, { timestamp: Math.floor(Date.now() / 1000) - 6 * 60 });
    assert.equal(stale.status, 401);
    const press = await standIn.deliver(
      events,
      { payload: { type: 'block_actions', actions: [{ action_id: 'rerun:x', type: 'button' }] } },
      { secret: 'wrong' },
    );
    assert.equal(press.status, 401);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(enqueued.length, jobs, 'no job was enqueued');
    assert.equal(standIn.calls.length, calls, 'no Web API call was made');
    assert.equal(standIn.responses.length, 0, 'nothing was posted to the response_url');
  });

  let first: StoredMessage;
  let firstJob: string;

  test('/compose is acked within 3 s, its status posted and updated, the PNG uploaded with card and buttons', async () => {
    const from = standIn.messages.length;
    const answer = await command(
      '/compose',
      'cat:<tabby> penguin:<plush> in a house --steps 1 --size 256x256 --seed 7',
    );
    assert.equal(answer.status, 200);
    assert.ok(answer.ms < 3000, `acked in ${answer.ms.toFixed(0)} ms`);
    const status = await standIn.waitFor('the status message', () =>
      standIn.messages
        .slice(from)
        .find((m) => m.channel === CHANNEL && m.files.length === 0 && !m.ephemeralTo),
    );
    firstJob = enqueued.at(-1)!;
    assert.equal(
      headingOf(status),
      `<@${ALICE}> · \`/compose cat:&lt;tabby&gt; penguin:&lt;plush&gt; in a house --steps 1 --size 256x256 --seed 7\``,
    );
    assert.match(textOf(status), /Queued|Step/);
    assert.ok(idOn(status, 'cancel:'));
    assertEscaped(status);

    first = await nextUpload(from, 'the picture');
    // The files.uploadV2 flow, in order: an upload URL, the bytes to it, the completion.
    const [urlCall] = standIn.callsOf('files.getUploadURLExternal');
    const [done] = standIn.callsOf('files.completeUploadExternal');
    assert.ok(urlCall && done && urlCall.at <= done.at);
    assert.equal(JSON.parse(String(done.args.files))[0].id, first.files[0].id);
    assert.equal(done.args.channel_id, CHANNEL);
    const image = first.files[0];
    assert.equal(image.mimetype, 'image/png');
    assert.deepEqual(await png(image.bytes), { width: 256, height: 256 });
    const job = await app.queue.get(firstJob);
    assert.ok(job?.result);
    assert.ok(
      image.bytes?.equals(Buffer.from(job.result.blobs.image)),
      'the upload is the engine’s PNG, byte for byte',
    );
    assert.equal(image.altText, 'a cat and a penguin in a house (seed 7)');

    // One Block Kit message: the card, then the buttons.
    const text = textOf(first);
    assert.match(text, /a cat and a penguin in a house/);
    assert.match(text, /Seed\*\n7/);
    assert.match(text, /cat → tabby/);
    const ids = actionIds(first);
    for (const prefix of ['rerun:', 'seed:', 'masks:', 'merge:', 'tweak:', 'weights:'])
      assert.ok(
        ids.some((id) => id.startsWith(prefix)),
        `${prefix} button`,
      );
    assertEscaped(first);

    // The status was edited while the job ran, at most one edit a second, and now says done.
    const final = await standIn.waitFor('the final status', () => /Done in/.test(status.text) && status);
    assert.ok(final.versions.length >= 2);
    assert.equal(actionIds(final).length, 0, 'no Cancel once done');
    const edits = standIn.callsOf('chat.update').filter((c) => c.args.ts === status.ts);
    for (let i = 1; i < edits.length; i++)
      assert.ok(edits[i].at - edits[i - 1].at >= 900, 'edits ≥ 1 s apart');
  });

  test('Rerun uploads identical PNG bytes', async () => {
    const from = standIn.messages.length;
    assert.equal((await press(first, idOn(first, 'rerun:'))).status, 200);
    const rerun = await nextUpload(from, 'the rerun');
    assert.ok(rerun.files[0].bytes?.equals(first.files[0].bytes!), 'same seed, same bytes');
    assert.equal(headingOf(rerun), `for <@${ALICE}> · rerun`);
  });

  test('Show masks uploads the masks into the picture’s thread', async () => {
    const from = standIn.messages.length;
    await press(first, idOn(first, 'masks:'));
    const masks = await nextUpload(from, 'the masks');
    assert.equal(masks.threadTs, first.ts);
    assert.ok(masks.files.length >= 1);
    assert.match(masks.files[0].filename, /^masks-/);
    await png(masks.files[0].bytes);
    assert.match(textOf(masks), /Which LoRA owns which part/);
  });

  test('a malformed /compose gets an ephemeral error with the suggestion, an empty one the help, and no job', async () => {
    const jobs = enqueued.length;
    const posts = standIn.callsOf('chat.postMessage').length;
    const from = standIn.messages.length;
    const answer = await command('/compose', 'cat:<tabbby> in a house', BOB);
    assert.equal(answer.status, 200);
    const error = await nextEphemeral(from, BOB, 'the error');
    const text = textOf(error);
    assert.match(text, /unknown LoRA 'tabbby' — did you mean 'tabby'\?/);
    assert.match(text, /Try: `\/compose cat:&lt;tabby&gt; in a house`/);
    assertEscaped(error);
    const help = standIn.messages.length;
    await command('/compose', '', BOB);
    assert.match(textOf(await nextEphemeral(help, BOB, 'the help')), /several LoRAs in one picture/);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(enqueued.length, jobs);
    assert.equal(standIn.callsOf('chat.postMessage').length, posts);
  });

  test('/loras pages with buttons, its select opens a card, /lora uploads the preview', async () => {
    let from = standIn.messages.length;
    await command('/loras', '', BOB);
    const list = await nextEphemeral(from, BOB, 'the list');
    const select = list.blocks.find((b) => b.type === 'actions')!.elements as {
      type: string;
      options?: unknown[];
    }[];
    assert.equal(select[0].type, 'static_select');
    assert.equal(select[0].options?.length, 25);
    assert.match(textOf(list), /29 LoRAs, page 1 of 2/);
    await press(list, idOn(list, 'loras:1'), BOB);
    await standIn.waitFor('page 2', () => /page 2 of 2/.test(textOf(list)));
    assert.equal(
      (list.blocks.find((b) => b.type === 'actions')!.elements as { options?: unknown[] }[])[0].options
        ?.length,
      4,
    );
    assert.ok(idOn(list, 'loras:0'), 'a Previous button');
    assert.ok(checkBlocks({ text: list.text, blocks: list.blocks as SlackMessage['blocks'] }).length === 0);

    from = standIn.messages.length;
    await press(list, 'lora-card', BOB, 'tabby');
    const card = await nextUpload(from, 'the tabby card with its preview');
    assert.match(textOf(card), /Trigger words/);
    assert.equal(card.files[0].mimetype, 'image/png');
    assert.ok(idOn(card, 'lora-try:tabby'));
    // All LoRAs on the public card answers the presser alone and leaves the card as it is.
    from = standIn.messages.length;
    await press(card, idOn(card, 'loras:0'), BOB);
    assert.match(textOf(await nextEphemeral(from, BOB, 'the list again')), /29 LoRAs, page 1 of 2/);
    assert.equal(card.versions.length, 1);

    from = standIn.messages.length;
    await command('/lora', 'tabbby', BOB);
    assert.match(textOf(await nextEphemeral(from, BOB, 'an unknown name')), /tabby/);
  });

  let merged: StoredMessage;

  test('Tweak: the slot select, then the LoRA picker, start a rerun with the new LoRA', async () => {
    let from = standIn.messages.length;
    await command(
      '/compose',
      'cat:<tabby> penguin:<plush> in a house --steps 2 --size 256x256 --seed 3 --method merge',
      CAROL,
    );
    merged = await nextUpload(from, 'the merged picture');

    from = standIn.messages.length;
    await press(merged, idOn(merged, 'tweak:'), CAROL);
    const slots = await nextEphemeral(from, CAROL, 'the slot select');
    await press(slots, idOn(slots, 'tweak:'), CAROL, '0');
    await standIn.waitFor('the LoRA picker', () => /New LoRA for cat/.test(textOf(slots)));
    const pickerId = idOn(slots, 'tweak:');
    from = standIn.messages.length;
    await press(slots, pickerId, CAROL, 'extra-01');
    const tweaked = await nextUpload(from, 'the tweaked picture');
    assert.match(textOf(tweaked), /cat → extra-01/);
    assert.equal(headingOf(tweaked), `for <@${CAROL}> · tweak`);
    await standIn.waitFor('the picker removed', () => slots.deleted);
  });

  test('New seed draws a different picture', async () => {
    const from = standIn.messages.length;
    assert.equal((await press(merged, idOn(merged, 'seed:'), CAROL)).status, 200);
    const reseeded = await nextUpload(from, 'the new seed');
    await png(reseeded.files[0].bytes);
    assert.equal(headingOf(reseeded), `for <@${CAROL}> · new seed`);
    assert.ok(!reseeded.files[0].bytes?.equals(merged.files[0].bytes!), 'another seed, another picture');
  });

  test('Weights…: the modal opens, refuses an out-of-range weight, and reruns with a good one', async () => {
    await press(merged, idOn(merged, 'weights:'), CAROL);
    const opened = await standIn.waitFor('views.open', () => standIn.views.at(-1));
    assert.equal((opened.view.title as { text: string }).text, 'Change a weight');
    const values = (weight: string) => ({
      subject: {
        subject: {
          type: 'static_select',
          selected_option: { value: '1', text: { type: 'plain_text', text: 'penguin' } },
        },
      },
      weight: { weight: { type: 'number_input', value: weight } },
    });
    const jobs = enqueued.length;
    const refused = await standIn.deliver(events, {
      payload: standIn.viewSubmission(opened, CAROL, values('7')),
    });
    assert.equal(refused.status, 200);
    const body = JSON.parse(refused.text) as { response_action: string; errors: Record<string, string> };
    assert.equal(body.response_action, 'errors');
    assert.match(body.errors.weight, /out of range/);
    assert.equal(enqueued.length, jobs);

    const from = standIn.messages.length;
    const accepted = await standIn.deliver(events, {
      payload: standIn.viewSubmission(opened, CAROL, values('0.5')),
    });
    assert.equal(accepted.status, 200);
    assert.equal(accepted.text, '');
    const rerun = await nextUpload(from, 'the reweighted picture');
    assert.match(textOf(rerun), /penguin → plush @0\.5/);
  });

  test('Cancel: refused for another user, done by an admin (asked of users.info); one job per user', async () => {
    let from = standIn.messages.length;
    await command(
      '/compose',
      'cat:<tabby> penguin:<plush> on the ice --steps 1 --size 256x256 --seed 11',
      ALICE,
    );
    const status = await standIn.waitFor('the status', () =>
      standIn.messages
        .slice(from)
        .find(
          (m) => m.channel === CHANNEL && !m.ephemeralTo && actionIds(m).some((a) => a.startsWith('cancel:')),
        ),
    );
    const jobId = enqueued.at(-1)!;

    from = standIn.messages.length;
    await command('/compose', 'cat:<tabby> in a house --steps 1', ALICE);
    assert.match(
      textOf(await nextEphemeral(from, ALICE, 'the per-user limit')),
      /already have a job queued or running/,
    );

    from = standIn.messages.length;
    await press(status, `cancel:${jobId}`, BOB);
    assert.match(textOf(await nextEphemeral(from, BOB, 'the refusal')), /Only the person who started a job/);
    assert.notEqual((await app.queue.get(jobId))?.state, 'cancelled');

    await press(status, `cancel:${jobId}`, ADMIN);
    await standIn.waitFor('the cancelled status', () => /Cancelled by u0admin/.test(status.text));
    await standIn.waitFor(
      'the job cancelled',
      async () => (await app.queue.get(jobId))?.state === 'cancelled',
    );
    assert.ok(standIn.callsOf('users.info').some((c) => c.args.user === ADMIN));
    // From the press on, the message only ever says who cancelled it, even as the job winds down.
    await new Promise((r) => setTimeout(r, 1500));
    const since = status.versions.findIndex((v) => /Cancelled by/.test(v.text));
    for (const v of status.versions.slice(since)) assert.match(v.text, /Cancelled by u0admin/);
  });

  test('/lora add: admins only (asked of users.info), the file downloaded with the bot token, checked and added', async () => {
    let from = standIn.messages.length;
    const views = standIn.views.length;
    await command('/lora', 'add', BOB);
    assert.match(textOf(await nextEphemeral(from, BOB, 'the refusal')), /Only workspace admins/);
    assert.equal(standIn.views.length, views, 'no modal for a non-admin');

    await command('/lora', 'add', ADMIN);
    const opened = await standIn.waitFor(
      'the upload modal',
      () => standIn.views.length > views && standIn.views.at(-1),
    );
    assert.equal((opened.view.title as { text: string }).text, 'Add a LoRA');
    const submit = (user: string, file: Record<string, unknown>, name?: string) =>
      standIn.deliver(events, {
        payload: standIn.viewSubmission(opened, user, {
          file: { file: { type: 'file_input', files: [file] } },
          name: { name: { type: 'plain_text_input', value: name ?? null } },
          replace: { replace: { type: 'checkboxes', selected_options: [] } },
        }),
      });
    const bytes = readFileSync(join(fixtureDir(), 'loras', 'lora_iii_peft_unet_te.safetensors'));
    const good = standIn.userFile('Fresh Cat.safetensors', bytes, ADMIN);

    const pickled = JSON.parse(
      (await submit(ADMIN, standIn.userFile('evil.ckpt', Buffer.from('x'), ADMIN))).text,
    );
    assert.match(pickled.errors.file, /pickled/);
    const forged = JSON.parse((await submit(BOB, good)).text);
    assert.match(forged.errors.file, /Only workspace admins/, 'the submission is checked again');
    assert.ok(!standIn.downloads.length, 'nothing downloaded yet');

    from = standIn.messages.length;
    const accepted = await submit(ADMIN, good, 'fresh-cat');
    assert.equal(accepted.text, '');
    const added = await nextEphemeral(from, ADMIN, 'the confirmation');
    assert.match(textOf(added), /Added fresh-cat/);
    assert.deepEqual(standIn.downloads, [{ id: String(good.id), token: BOT_TOKEN }]);
    assert.equal(app.library.get('fresh-cat')?.usable, true);
  });

  test('a channel the bot is not in: an ephemeral "invite me", and the job is cancelled', async () => {
    const from = standIn.messages.length;
    await command('/compose', 'cat:<tabby> in a house --steps 1 --method merge', CAROL, OUTSIDE);
    const reply = await nextEphemeral(from, CAROL, 'the invite hint');
    assert.match(textOf(reply), /not_in_channel/);
    assert.match(textOf(reply), /`\/invite @clora`/);
    const jobId = enqueued.at(-1)!;
    await standIn.waitFor(
      'the job cancelled',
      async () => (await app.queue.get(jobId))?.state === 'cancelled',
    );
  });

  test('per-user rate limit: the 16th request in a burst is refused', async () => {
    const user = 'U0SPAMMER';
    for (let i = 0; i < 15; i++) assert.equal((await command('/queue', '', user)).status, 200);
    const from = standIn.messages.length;
    await command('/queue', '', user);
    const refused = await standIn.waitFor('the refusal', () =>
      standIn.messages.slice(from).find((m) => m.ephemeralTo === user && /Slow down/.test(m.text)),
    );
    assert.match(textOf(refused), /Try again in \d+ seconds?/);
  });

  test('Socket Mode: commands and buttons arrive as envelopes over the WebSocket, and are acked', async () => {
    // One adapter writes to a channel, as in production: two pacers would not see each other's writes.
    await http.stop();
    socket = await startSlack(app, {
      slack: { botToken: BOT_TOKEN, mode: 'socket', appToken: APP_TOKEN, apiUrl: standIn.apiUrl, port: 0 },
    });
    await standIn.connected();
    assert.match(socket.address, /Socket Mode/);
    const open = standIn.callsOf('apps.connections.open');
    assert.equal(open.length, 1);

    let from = standIn.messages.length;
    const loras = await standIn.envelope(
      'slash_commands',
      standIn.slashCommand('/loras', 'extra', { user: CAROL, channel: CHANNEL }),
    );
    assert.ok(loras.ms < 3000);
    assert.match(textOf(await nextEphemeral(from, CAROL, 'the list')), /LoRAs matching “extra”/);

    from = standIn.messages.length;
    const compose = await standIn.envelope(
      'slash_commands',
      standIn.slashCommand(
        '/compose',
        'cat:<tabby> penguin:<plush> in a house --steps 2 --size 256x256 --seed 5 --method merge',
        {
          user: CAROL,
          channel: CHANNEL,
        },
      ),
    );
    assert.ok(compose.ms < 3000, `acked in ${compose.ms.toFixed(0)} ms`);
    const picture = await nextUpload(from, 'the picture');
    await png(picture.files[0].bytes);

    from = standIn.messages.length;
    const rerun = await standIn.envelope(
      'interactive',
      standIn.blockActions(picture, idOn(picture, 'rerun:'), CAROL),
    );
    assert.ok(rerun.ms < 3000);
    const again = await nextUpload(from, 'the rerun');
    assert.ok(again.files[0].bytes?.equals(picture.files[0].bytes!));
    const status = standIn.messages.slice(from).find((m) => m.files.length === 0 && !m.ephemeralTo);
    await standIn.waitFor('the rerun’s final status', () => status && /Done in/.test(status.text));

    // The "Remix with clora" message shortcut on the posted picture gives its command back, privately.
    const { comments } = await sharp(picture.files[0].bytes!).metadata();
    assert.match(comments?.find((c) => c.keyword === 'parameters')?.text ?? '', /Seed: 5, Size: 256x256/);
    from = standIn.messages.length;
    const downloads = standIn.downloads.length;
    const remix = await standIn.envelope('interactive', standIn.messageShortcut(picture, 'remix', CAROL));
    assert.ok(remix.ms < 3000);
    // as Slack shows it: mrkdwn carries <, > and & escaped
    const answer = textOf(await nextEphemeral(from, CAROL, 'the remix'))
      .replaceAll('&lt;', '<')
      .replaceAll('&gt;', '>')
      .replaceAll('&amp;', '&');
    assert.match(
      answer,
      /\/compose cat:<tabby> penguin:<plush> in a house --seed 5 --steps 2 --size 256x256 --cfg 7\.5 --sampler ddim --method merge/,
    );
    assert.deepEqual(
      standIn.downloads.slice(downloads).map((d) => d.token),
      [BOT_TOKEN],
    );
    assert.equal(standIn.messages.slice(from).filter((m) => m.files.length > 0).length, 0, 'nothing ran');

    from = standIn.messages.length;
    const plain = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#000' } })
      .png()
      .toBuffer();
    const foreign = standIn.userMessageWithFile(CHANNEL, CAROL, 'holiday.png', plain);
    await standIn.envelope('interactive', standIn.messageShortcut(foreign, 'remix', CAROL));
    assert.match(textOf(await nextEphemeral(from, CAROL, 'the refusal')), /carries no recipe/);
  });

  test('the channel was never written to faster than Slack allows', () => {
    assert.equal(standIn.rateLimited, 0, 'no 429 from the stand-in');
    const writes = standIn.calls.filter(
      (c) => c.args.channel === CHANNEL && (c.method === 'chat.postMessage' || c.method === 'chat.update'),
    );
    for (let i = 1; i < writes.length; i++)
      assert.ok(
        writes[i].at - writes[i - 1].at >= 900,
        `${writes[i].method} ${writes[i].at - writes[i - 1].at} ms after the last write`,
      );
  });

  test('no token or signing secret in any log line', () => {
    assert.ok(
      logLines.some((l) => l.includes('[bot/slack')),
      'the adapter’s log lines were captured',
    );
    assert.ok(
      logLines.some((l) => /debug/.test(l) && /http request/.test(l)),
      'Web API debug lines were captured',
    );
    for (const line of logLines)
      for (const secret of SECRETS) assert.ok(!line.includes(secret), `a secret in: ${line}`);
  });
});

describe('Block Kit rendering keeps Slack’s limits', () => {
  const huge: MessageReply = {
    kind: 'message',
    ephemeral: false,
    text: `${'a line of prose with <angle> & ampersand\n'.repeat(200)}`,
    card: {
      title: 'T'.repeat(300),
      description: 'd'.repeat(5000),
      fields: Array.from({ length: 60 }, (_, i) => ({
        name: `field ${i}`,
        value: 'v'.repeat(2500),
        inline: i % 3 !== 0,
      })),
      footer: 'f'.repeat(4000),
      tone: 'brand',
    },
    rows: [
      {
        kind: 'buttons',
        buttons: Array.from({ length: 30 }, (_, i) => ({
          id: `b${i}`,
          label: 'L'.repeat(100),
          style: 'secondary' as const,
        })),
      },
      {
        kind: 'select',
        select: {
          id: 'pick',
          placeholder: 'P'.repeat(200),
          options: Array.from({ length: 120 }, (_, i) => ({
            label: 'o'.repeat(100),
            value: `v${i}`,
            description: 'd'.repeat(100),
            ...(i === 3 ? { selected: true } : {}),
          })),
          paging: { page: 1, pageCount: 3, previousId: 'prev', nextId: 'next' },
        },
      },
    ],
  };

  test('an oversized reply renders within every limit, buttons kept', () => {
    const message = renderReply(huge, { heading: '<@U1> asked', note: 'n'.repeat(4000) });
    assert.deepEqual(checkBlocks(message), []);
    assert.equal(message.blocks.length, SLACK_LIMITS.blocks);
    const actions = message.blocks.filter((b) => b.type === 'actions');
    const elements = actions.flatMap((b) => (b.type === 'actions' ? b.elements : []));
    assert.equal(elements.length, 30 + 3, 'every button, the select and both page buttons');
    assert.ok(
      actions.every((b) => b.type === 'actions' && b.elements.length <= SLACK_LIMITS.actionsElements),
    );
    const select = elements.find((e) => e.type === 'static_select');
    assert.ok(select?.type === 'static_select' && select.options?.length === SLACK_LIMITS.selectOptions);
    assert.equal(select.initial_option?.value, 'v3');
  });

  test('disabled buttons and secondary styles are left out, as Block Kit has neither', () => {
    const message = renderReply({
      kind: 'message',
      ephemeral: false,
      text: 'x',
      rows: [
        {
          kind: 'buttons',
          buttons: [
            { id: 'a', label: 'A', style: 'secondary' },
            { id: 'b', label: 'B', style: 'primary', disabled: true },
            { id: 'c', label: 'C', style: 'danger' },
          ],
        },
      ],
    });
    const actions = message.blocks.find((b) => b.type === 'actions');
    assert.ok(actions?.type === 'actions');
    assert.deepEqual(
      actions.elements.map((e) => (e.type === 'button' ? [e.action_id, e.style] : [])),
      [
        ['a', undefined],
        ['c', 'danger'],
      ],
    );
  });

  test('an action id Slack cannot take is a bug, not something to clip', () => {
    assert.throws(
      () =>
        renderReply({
          kind: 'message',
          ephemeral: false,
          rows: [{ kind: 'buttons', buttons: [{ id: 'x'.repeat(256), label: 'X', style: 'primary' }] }],
        }),
      /action_id/,
    );
  });

  test('mrkdwn: &, <, > escaped, **bold** → *bold*, code left as it is', () => {
    assert.equal(mrkdwn('**cat:<tabby>** & `a**b**<c>`'), '*cat:&lt;tabby&gt;* &amp; `a**b**&lt;c&gt;`');
    assert.equal(mrkdwn('- one\n- two'), '• one\n• two');
  });
});

describe('Slack adapter parts', () => {
  test('the pacer spaces one channel’s writes, coalesces waiting edits, leaves other channels alone', async () => {
    const pacer = new ChannelPacer(80);
    const at: [string, number][] = [];
    const t0 = Date.now();
    const send = (label: string) => async () => {
      at.push([label, Date.now() - t0]);
      return label;
    };
    const results = await Promise.all([
      pacer.run('C1', send('post')),
      pacer.run('C1', send('edit-1'), 'edit'),
      pacer.run('C1', send('edit-2'), 'edit'),
      pacer.run('C2', send('other')),
    ]);
    assert.deepEqual(results, ['post', 'edit-2', 'edit-2', 'other']);
    assert.deepEqual(
      at.map(([l]) => l),
      ['post', 'other', 'edit-2'],
    );
    const post = at.find(([l]) => l === 'post')![1];
    const edit = at.find(([l]) => l === 'edit-2')![1];
    assert.ok(edit - post >= 75, `the edit came ${edit - post} ms after the post`);
    assert.ok(at.find(([l]) => l === 'other')![1] < 60, 'another channel does not wait');
    pacer.close();
    await assert.rejects(pacer.run('C1', send('late')));
  });

  test('receiver configuration: Socket Mode with the app token, HTTP with the signing secret, both at SLACK_API_URL', () => {
    const logger = boltLogger(createLogger('silent'), 'info');
    const socketMode = boltOptions(
      { botToken: BOT_TOKEN, mode: 'socket', appToken: APP_TOKEN, apiUrl: 'http://x/api/', port: 0 },
      logger,
    );
    assert.equal(socketMode.socketMode, true);
    assert.equal(socketMode.appToken, APP_TOKEN);
    assert.equal(socketMode.signingSecret, undefined);
    assert.equal(socketMode.clientOptions?.slackApiUrl, 'http://x/api/');
    const httpMode = boltOptions(
      { botToken: BOT_TOKEN, mode: 'http', signingSecret: SIGNING_SECRET, port: 0 },
      logger,
    );
    assert.equal(httpMode.socketMode, undefined);
    // HTTP events go through our receiver, which checks the request's time before Bolt does.
    assert.ok(httpMode.receiver instanceof HTTPReceiver);
    assert.equal(httpMode.clientOptions?.slackApiUrl, undefined);
    assert.throws(
      () => boltOptions({ botToken: BOT_TOKEN, mode: 'http', port: 0 }, logger),
      /SLACK_SIGNING_SECRET/,
    );
    assert.throws(
      () => boltOptions({ botToken: BOT_TOKEN, mode: 'socket', port: 0 }, logger),
      /SLACK_APP_TOKEN/,
    );
  });

  test('the manifest declares every slash command the adapter listens to, and the scopes it uses', () => {
    const manifest = readFileSync(join(repoRoot, 'bot', 'slack', 'manifest.yaml'), 'utf8');
    const commands = [...manifest.matchAll(/^\s*- command: (\S+)$/gm)].map((m) => m[1]);
    assert.deepEqual(commands.sort(), [...SLASH_COMMANDS].sort());
    for (const entry of COMMAND_TABLE) {
      const declared = new RegExp(
        `- command: /${entry.name}\\n(?:\\s+#.*\\n)*\\s+description: (.*)\\n(?:\\s+usage_hint: "(.*)"\\n)?`,
      ).exec(manifest);
      assert.ok(declared, `/${entry.name} is declared`);
      assert.equal(declared[1], entry.description, `/${entry.name}'s description is the table's`);
      assert.equal(declared[2] ?? '', entry.usage, `/${entry.name}'s usage hint is the table's`);
    }
    for (const scope of ['commands', 'chat:write', 'files:write', 'files:read', 'users:read'])
      assert.match(manifest, new RegExp(`^\\s*- ${scope}$`, 'm'));
    assert.match(manifest, /^\s*socket_mode_enabled: true$/m);
    assert.match(manifest, /^ {2}interactivity:\n {4}is_enabled: true$/m);
  });

  test('the bot token is only sent to Slack’s file host (or the SLACK_API_URL stand-in)', () => {
    assert.ok(isSlackFileUrl('https://files.slack.com/files-pri/T1-F1/download/a.safetensors'));
    assert.ok(!isSlackFileUrl('http://files.slack.com/files-pri/T1-F1/a.safetensors'), 'not over plain HTTP');
    assert.ok(!isSlackFileUrl('https://files.slack.com.evil.example/a.safetensors'));
    assert.ok(!isSlackFileUrl('https://example.com/a.safetensors'));
    assert.ok(isSlackFileUrl('http://127.0.0.1:9/files-pri/x', 'http://127.0.0.1:9/api/'));
    assert.ok(!isSlackFileUrl('http://127.0.0.1:10/files-pri/x', 'http://127.0.0.1:9/api/'));
  });

  test('HTTP mode listens on SLACK_PORT (default 3000); a bad value stops start-up naming the key', () => {
    assert.equal(loadConfig({}).slack, undefined);
    const base = { SLACK_BOT_TOKEN: BOT_TOKEN, SLACK_SIGNING_SECRET: SIGNING_SECRET };
    assert.equal(loadConfig(base).slack?.port, 3000);
    assert.equal(loadConfig({ ...base, SLACK_PORT: '3100' }).slack?.port, 3100);
    assert.throws(() => loadConfig({ ...base, SLACK_PORT: 'eighty' }), /SLACK_PORT="eighty"/);
  });
});
