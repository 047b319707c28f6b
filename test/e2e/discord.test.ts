// The Discord adapter end to end: the real app (LoRA library, in-process queue, engine thread on
// the tiny SD 1.5 fixture) behind discord.js, talking to a local stand-in of Discord's REST API
// and gateway (test/standins/discord.ts). Covers the gateway handshake, command registration,
// /compose from deferral to the uploaded PNG and its buttons, reruns with identical bytes,
// masks, cancel, tweaks by select and modal, autocomplete, /loras, /lora, /lora add with its
// permission and file checks, upload limits, token expiry, restarts, rate limits and logs.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import type { Adapter } from '../../bot/adapter.ts';
import { type App, startApp } from '../../bot/app.ts';
import { registerCommands, startDiscord } from '../../bot/discord/index.ts';
import { DISCORD_LIMITS, renderReply, renderRows } from '../../bot/discord/render.ts';
import type { Logger } from '../../bot/log.ts';
import { encodePng } from '../../bot/render/index.ts';
import type { ReplyButton, ReplyRow } from '../../commands/reply.ts';
import { loadConfig } from '../../config/index.ts';
import { fixtureDir, fixtureLoraFolder } from '../fixtures.ts';
import { DiscordStandIn, type Person, type RecordedCall, type SentInteraction } from '../standins/discord.ts';

const fx = fixtureDir();
const TOKEN = 'MTEwMDAwMDAwMDAwMDAwMDAwMQ.GhAbCd.not-a-real-token_Zq9xR2vL8kP4wY7tN3mB';
const APP_ID = '1100000000000000001';
const GUILD = { id: '1300000000000000000', name: 'Test server', channelId: '1300000000000000001' };
const KEEPER_ROLE = { id: '1300000000000000002', name: 'lora-keepers' };
const MANAGE_GUILD = 1n << 5n;
const MIN = 60_000;

const person = (n: number, name: string, extra: Partial<Person> = {}): Person => ({
  id: `14000000000000000${String(n).padStart(2, '0')}`,
  username: name,
  ...extra,
});
const alice = person(1, 'alice');
const bob = person(2, 'bob');
const carol = person(3, 'carol');
const dave = person(4, 'dave');
const erin = person(5, 'erin');
const frank = person(6, 'frank');
const gina = person(7, 'gina');
const owner = person(8, 'owner', { permissions: MANAGE_GUILD });
const keeper = person(9, 'keeper', { roles: [KEEPER_ROLE.id] });

const root = mkdtempSync(join(tmpdir(), 'clora-discord-'));
const loraDir = fixtureLoraFolder(root);
copyFileSync(join(fx, 'loras', 'lora_iii_peft_unet_te.safetensors'), join(loraDir, 'corgi.safetensors'));

const logLines: string[] = [];
function recordingLogger(scope = 'test'): Logger {
  const write = (level: string) => (m: string, e?: unknown) =>
    logLines.push(
      `${level} [${scope}] ${m}${e === undefined ? '' : ` ${e instanceof Error ? e.stack : String(e)}`}`,
    );
  return {
    debug: write('debug'),
    info: write('info'),
    warn: write('warn'),
    error: write('error'),
    child: (s) => recordingLogger(`${scope}/${s}`),
  };
}

let standIn: DiscordStandIn;
let app: App;
let adapter: Adapter;
const sent: SentInteraction[] = [];

function track(i: SentInteraction): SentInteraction {
  sent.push(i);
  return i;
}

async function startAdapter(gatewayUrl?: string): Promise<Adapter> {
  // DISCORD_GATEWAY_URL, when set, wins over the URL that GET /gateway/bot announces.
  const target = gatewayUrl
    ? { ...app, config: { ...app.config, discord: { ...app.config.discord!, gatewayUrl } } }
    : app;
  return startDiscord(target, {
    log: recordingLogger(),
    now: () => standIn.now(),
    progressIntervalMs: 1000,
    // Generous, so a busy machine's timing never throttles a flow; the rate-limit test stops the clock.
    rateLimit: { burst: 30, perSecond: 10 },
  });
}

const isOriginalEdit = (i: SentInteraction) => (c: RecordedCall) =>
  c.method === 'PATCH' && c.route.endsWith(`/${i.token}/messages/@original`);
const isCallback = (i: SentInteraction) => (c: RecordedCall) =>
  c.route === `/interactions/${i.id}/${i.token}/callback`;

function callback(i: SentInteraction, timeoutMs = 5000): Promise<RecordedCall> {
  return standIn.waitForCall(isCallback(i), timeoutMs);
}

/** The edit that put the finished picture in the interaction's reply. */
function resultEdit(i: SentInteraction, timeoutMs = 2 * MIN): Promise<RecordedCall> {
  return standIn.waitForCall(
    (c) => isOriginalEdit(i)(c) && c.status === 200 && c.files.some((f) => f.name.startsWith('image-')),
    timeoutMs,
  );
}

function file(call: RecordedCall, prefix: string) {
  const f = call.files.find((x) => x.name.startsWith(prefix));
  assert.ok(f, `no ${prefix}… file in ${call.files.map((x) => x.name).join(', ')}`);
  return f;
}

function customIds(components: readonly { components: readonly object[] }[]): string[] {
  return components.flatMap((r) => r.components.map((c) => ('custom_id' in c ? String(c.custom_id) : '')));
}

function jobIdOf(call: RecordedCall): string {
  const id = customIds(call.body.components).find((x) => x.startsWith('rerun:'));
  assert.ok(id, 'the result has no Rerun button');
  return id.slice('rerun:'.length);
}

function messageIdOf(i: SentInteraction): string {
  const m = standIn.original(i);
  assert.ok(m, 'the interaction has no reply message');
  return m.message.id;
}

describe('Discord adapter against a stand-in of Discord', { timeout: 4 * MIN }, () => {
  before(async () => {
    standIn = await DiscordStandIn.start({
      token: TOKEN,
      applicationId: APP_ID,
      guild: { ...GUILD, roles: [KEEPER_ROLE] },
      heartbeatIntervalMs: 300,
    });
    const config = loadConfig({
      MODEL_PATH: join(fx, 'model'),
      LORA_DIR: loraDir,
      CACHE_DIR: join(root, 'cache'),
      MAX_SIZE: '128',
      USER_CONCURRENCY: '3',
      LORA_UPLOAD_MAX_MB: '2',
      DISCORD_TOKEN: TOKEN,
      DISCORD_APPLICATION_ID: APP_ID,
      DISCORD_GUILD_ID: GUILD.id,
      DISCORD_ADMIN_ROLE: KEEPER_ROLE.name,
      DISCORD_API_URL: standIn.apiUrl,
    });
    app = await startApp(config, { log: recordingLogger() });
    await registerCommands(config);
    adapter = await startAdapter();
    await app.engine?.ready();
  });

  after(async () => {
    await adapter?.stop();
    await app?.close();
    await standIn?.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('connects with the real handshake: HELLO, IDENTIFY, READY, heartbeats answered by ACKs', async () => {
    assert.equal(standIn.gateway.identifies.length, 1);
    const identify = standIn.gateway.identifies[0];
    assert.equal(identify.intents & 1, 1, 'the Guilds intent is asked for');
    assert.deepEqual(identify.shard, [0, 1]);
    assert.equal(identify.compress, false);
    const gatewayBot = standIn.calls.find((c) => c.route === '/gateway/bot');
    assert.ok(gatewayBot?.authorized, 'the gateway is discovered with the bot token');
    const t0 = Date.now();
    while (standIn.gateway.heartbeats < 2 && Date.now() - t0 < 5000)
      await new Promise((r) => setTimeout(r, 50));
    assert.ok(standIn.gateway.heartbeats >= 2, `${standIn.gateway.heartbeats} heartbeats`);
    assert.equal(standIn.gateway.acks, standIn.gateway.heartbeats);
    assert.deepEqual(standIn.gateway.closes, [], 'the connection stays open');
    assert.deepEqual(standIn.gateway.paths, ['/gateway'], 'at the URL GET /gateway/bot announced');
  });

  it('registers the commands for DISCORD_GUILD_ID with typed options', () => {
    const put = standIn.calls.find((c) => c.method === 'PUT');
    assert.ok(put);
    assert.equal(put.route, `/applications/${APP_ID}/guilds/${GUILD.id}/commands`);
    assert.ok(put.authorized);
    assert.equal(put.status, 200);
    const names = put.body.map((c: { name: string }) => c.name);
    assert.deepEqual(names, ['compose', 'loras', 'lora', 'queue', 'help']);
    const compose = put.body[0];
    const option = (n: string) => compose.options.find((o: { name: string }) => o.name === n);
    assert.deepEqual(
      compose.options.map((o: { name: string }) => o.name),
      ['prompt', 'seed', 'steps', 'size', 'cfg', 'negative', 'sampler', 'method', 'masks', 'remix'],
    );
    assert.notEqual(option('prompt').required, true, 'a prompt, or a picture to remix');
    assert.equal(option('remix').type, 11, '/compose remix: takes an attachment');
    assert.equal(option('prompt').autocomplete, true);
    assert.equal(option('seed').type, 4);
    assert.equal(option('steps').max_value, 150);
    assert.equal(option('cfg').type, 10);
    assert.equal(option('masks').type, 5);
    assert.ok(option('sampler').choices.some((c: { value: string }) => c.value === 'euler_a'));
    const lora = put.body[2];
    assert.deepEqual(
      lora.options.map((o: { name: string; type: number }) => [o.name, o.type]),
      [
        ['info', 1],
        ['add', 1],
      ],
    );
    assert.equal(lora.options[1].options[0].type, 11, '/lora add takes an attachment');
  });

  it('completes the LoRA being typed in the prompt with whole-prompt choices, and LoRA options', async () => {
    const typing = track(standIn.autocomplete(alice, 'compose', { prompt: 'cat:<ta' }, 'prompt'));
    const answer = await callback(typing);
    assert.equal(answer.status, 204);
    assert.equal(answer.body.type, 8);
    assert.deepEqual(answer.body.data.choices[0], { name: 'cat:<tabby>', value: 'cat:<tabby>' });

    const second = track(
      standIn.autocomplete(alice, 'compose', { prompt: 'cat:<tabby> penguin:<pl' }, 'prompt'),
    );
    assert.equal((await callback(second)).body.data.choices[0].value, 'cat:<tabby> penguin:<plush>');

    const size = track(standIn.autocomplete(alice, 'compose', { prompt: 'x', size: '12' }, 'size'));
    assert.deepEqual((await callback(size)).body.data.choices, [{ name: '128x128', value: '128x128' }]);

    const info = track(standIn.autocomplete(alice, 'lora', { name: 'cor' }, 'name', 'info'));
    assert.deepEqual((await callback(info)).body.data.choices, [{ name: 'corgi', value: 'corgi' }]);
  });

  it('answers a malformed /compose with a private error naming the fix, and queues nothing', async () => {
    const i = track(standIn.command(alice, 'compose', { prompt: 'cat:<tabyy> in a house', steps: 4 }));
    const answer = await callback(i);
    assert.equal(answer.status, 204);
    assert.equal(answer.body.type, 4);
    assert.equal(answer.body.data.flags & 64, 64, 'ephemeral');
    assert.match(answer.body.data.content, /unknown LoRA 'tabyy' — did you mean 'tabby'\?/);
    assert.match(answer.body.data.content, /Try: `\/compose cat:<tabby> in a house --steps 4`/);
    const status = await app.commands.queueStatus({
      platform: 'discord',
      userId: alice.id,
      userName: 'alice',
      scope: GUILD.id,
      channel: GUILD.channelId,
      isAdmin: false,
    });
    assert.equal(status.kind === 'message' && status.text, 'You have no recent jobs. Try /compose.');
  });

  let clora: { interaction: SentInteraction; result: RecordedCall };

  it('/compose: deferred within 3 s, edited with progress, then the PNG with masks and five buttons', async () => {
    const i = track(
      standIn.command(bob, 'compose', {
        prompt: 'cat:<tabby> penguin:<plush> in a house',
        seed: 7,
        steps: 4,
        masks: true,
      }),
    );
    const deferral = await callback(i);
    assert.equal(deferral.body.type, 5, 'a deferred reply');
    assert.equal(deferral.status, 204);
    assert.ok(deferral.at - i.sentAt < 3000, `acknowledged after ${deferral.at - i.sentAt} ms`);

    const result = await resultEdit(i);
    const edits = standIn.callsFor(i).filter(isOriginalEdit(i));
    const progress = edits.filter((c) => c !== result);
    assert.ok(progress.length >= 2, `${progress.length} progress edits`);
    assert.ok(
      progress.some((c) => /^Step \d+\/4/.test(c.body.embeds[0].description)),
      'progress shows step x/y',
    );
    assert.ok(
      progress.every((c) => customIds(c.body.components).some((id) => id.startsWith('cancel:'))),
      'Cancel while running',
    );
    // Edits after the first come from the follower, throttled to one a second (arrival times jitter).
    const follower = progress.slice(1).map((c) => c.at);
    const gaps = follower.slice(1).map((at, k) => at - follower[k]);
    if (gaps.length > 0) {
      assert.ok(Math.min(...gaps) >= 250, `progress edits ${gaps.join(', ')} ms apart`);
      assert.ok(
        (follower.at(-1)! - follower[0]) / gaps.length >= 900,
        `progress edits ${gaps.join(', ')} ms apart`,
      );
    }

    // Previews come every 2 s of denoising: each is attached and shown in the progress embed.
    for (const c of progress.filter((p) => p.files.length > 0)) {
      const preview = file(c, 'preview-');
      assert.equal(c.body.embeds[0].image.url, `attachment://${preview.name}`);
      assert.equal((await sharp(preview.bytes).metadata()).format, 'webp');
    }
    const image = file(result, 'image-');
    assert.match(image.name, /\.png$/);
    const meta = await sharp(image.bytes).metadata();
    assert.equal(meta.format, 'png');
    assert.equal(meta.width, 128);
    assert.equal(meta.height, 128);
    const masks = file(result, 'masks-');
    assert.ok((await sharp(masks.bytes).metadata()).width! > 0, 'mask thumbnails decode');
    const embed = result.body.embeds[0];
    assert.equal(embed.image.url, `attachment://${image.name}`);
    assert.ok(
      embed.fields.some((f: { name: string; value: string }) => f.name === 'Seed' && f.value === '7'),
    );
    const buttons = result.body.components.flatMap((r: { components: unknown[] }) => r.components);
    assert.equal(buttons.length, 5);
    const jobId = jobIdOf(result);
    assert.deepEqual(
      buttons.map((b: { custom_id: string }) => b.custom_id),
      ['rerun', 'seed', 'masks', 'merge', 'tweak'].map((k) => `${k}:${jobId}`),
    );
    assert.ok(buttons.every((b: { custom_id: string }) => b.custom_id.length <= 100));
    const stored = standIn.original(i);
    assert.ok(
      stored && standIn.attachmentBytes(stored, image.name)?.equals(image.bytes),
      'the upload is stored',
    );
    clora = { interaction: i, result };
  });

  it('/compose remix: gives back the command the posted PNG carries; refuses foreign files and no prompt', async () => {
    const image = file(clora.result, 'image-');
    const { comments } = await sharp(image.bytes).metadata();
    assert.match(comments?.find((c) => c.keyword === 'parameters')?.text ?? '', /Seed: 7, Size: 128x128/);
    const posted = standIn.addAttachment(image.name, image.bytes, 'image/png');
    const i = track(standIn.command(alice, 'compose', { remix: posted }));
    const deferral = await callback(i);
    assert.equal(deferral.body.type, 5);
    assert.equal(deferral.body.data.flags & 64, 64, 'only the user sees the remix');
    const edit = await standIn.waitForCall(isOriginalEdit(i), 20_000);
    const embed = edit.body.embeds[0];
    assert.equal(embed.title, 'Remix this picture');
    assert.match(
      embed.description,
      /```\n\/compose cat:<tabby> penguin:<plush> in a house --seed 7 --steps 4 --size 128x128 --cfg 7\.5 --sampler ddim --method clora\n```/,
    );
    assert.ok(
      standIn.callsFor(i).every((c) => !/"(cancel|rerun):/.test(JSON.stringify(c.body ?? {}))),
      'nothing ran',
    );

    const foreign = standIn.addAttachment(
      'other.png',
      await sharp({ create: { width: 8, height: 8, channels: 3, background: '#000' } })
        .png()
        .toBuffer(),
      'image/png',
    );
    const f = track(standIn.command(alice, 'compose', { remix: foreign }));
    await callback(f);
    const refused = await standIn.waitForCall(isOriginalEdit(f), 20_000);
    assert.match(refused.body.content, /carries no recipe/);

    const empty = track(standIn.command(alice, 'compose', {}));
    assert.match((await callback(empty)).body.data.content, /needs a prompt/);
  });

  let merge: { interaction: SentInteraction; result: RecordedCall; png: Buffer };

  it('Rerun uploads identical bytes; New seed a different picture', async () => {
    const i = track(
      standIn.command(carol, 'compose', {
        prompt: 'cat:<tabby> penguin:<plush> in a house',
        seed: 11,
        steps: 4,
        method: 'merge',
      }),
    );
    const result = await resultEdit(i);
    const png = file(result, 'image-').bytes;
    merge = { interaction: i, result, png };
    const jobId = jobIdOf(result);

    const rerun = track(standIn.click(carol, messageIdOf(i), `rerun:${jobId}`));
    assert.equal((await callback(rerun)).body.type, 5);
    const again = await resultEdit(rerun);
    assert.notEqual(jobIdOf(again), jobId, 'a new job');
    assert.ok(file(again, 'image-').bytes.equals(png), 'the same seed gives the same bytes');

    const fresh = track(standIn.click(carol, messageIdOf(i), `seed:${jobId}`));
    const other = await resultEdit(fresh);
    assert.ok(!file(other, 'image-').bytes.equals(png), 'a new seed gives another picture');
    const seed = other.body.embeds[0].fields.find((f: { name: string }) => f.name === 'Seed').value;
    assert.notEqual(seed, '11');
  });

  it('Show masks on a job without masks says so privately', async () => {
    const press = track(
      standIn.click(carol, messageIdOf(merge.interaction), `masks:${jobIdOf(merge.result)}`),
    );
    const answer = await callback(press);
    assert.equal(answer.body.type, 4);
    assert.equal(answer.body.data.flags & 64, 64);
    assert.match(answer.body.data.content, /no masks/);
  });

  it('Cancel stops a running job and the reply says so', async () => {
    const i = track(
      standIn.command(dave, 'compose', { prompt: 'cat:<tabby> penguin:<plush> on ice', steps: 4 }),
    );
    const running = await standIn.waitForCall(
      (c) => isOriginalEdit(i)(c) && c.body.embeds?.[0]?.title === 'Composing…',
      2 * MIN,
    );
    const cancelId = customIds(running.body.components).find((x) => x.startsWith('cancel:'));
    assert.ok(cancelId);
    const press = track(standIn.click(dave, messageIdOf(i), cancelId));
    const update = await callback(press);
    assert.equal(update.body.type, 7, 'the progress message is updated in place');
    assert.equal(update.body.data.embeds[0].title, 'Cancelled');
    assert.match(update.body.data.embeds[0].description, /Cancelled by dave/);
    assert.deepEqual(update.body.data.components, []);
    assert.equal((await app.queue.get(cancelId.slice('cancel:'.length)))?.cancelRequested, true);
    // The engine stops at its next check; then the follower settles the reply as cancelled.
    const settled = await standIn.waitForCall(
      (c) => isOriginalEdit(i)(c) && c.at >= update.at && c.body.embeds?.[0]?.title === 'Cancelled',
      30_000,
    );
    assert.deepEqual(settled.body.components, []);
    assert.equal((await app.queue.get(cancelId.slice('cancel:'.length)))?.state, 'cancelled');
    assert.ok(
      !standIn.callsFor(i).some((c) => c.files.some((f) => f.name.startsWith('image-'))),
      'no picture',
    );
  });

  it('Tweak: a select picks the subject, another its new LoRA; a modal changes a weight; same seed', async () => {
    const jobId = jobIdOf(merge.result);
    const open = track(standIn.click(carol, messageIdOf(merge.interaction), `tweak:${jobId}`));
    const menu = await callback(open);
    assert.equal(menu.body.type, 4);
    assert.equal(menu.body.data.flags & 64, 64);
    const slotSelect = menu.body.data.components[0].components[0];
    assert.equal(slotSelect.type, 3);
    assert.deepEqual(
      slotSelect.options.map((o: { label: string }) => o.label),
      ['cat', 'penguin', 'style'],
    );

    const slot = track(standIn.select(carol, messageIdOf(open), `tweak:${jobId}`, ['0']));
    const picker = await callback(slot);
    assert.equal(picker.body.type, 7, 'the menu becomes the LoRA picker');
    const ids = customIds(picker.body.data.components);
    assert.deepEqual(ids, [`tweak:${jobId}:0`, `weight:${jobId}:0`]);
    const loraSelect = picker.body.data.components[0].components[0];
    assert.deepEqual(
      loraSelect.options.map((o: { value: string; default?: boolean }) => [o.value, o.default ?? false]),
      // plush draws the penguin, so the cat is not offered it
      [
        ['corgi', false],
        ['tabby', true],
      ],
    );

    const swap = track(standIn.select(carol, messageIdOf(open), `tweak:${jobId}:0`, ['corgi']));
    assert.equal((await callback(swap)).body.type, 5);
    const swapped = await resultEdit(swap);
    const swappedLoras = swapped.body.embeds[0].fields.find(
      (f: { name: string }) => f.name === 'LoRAs',
    ).value;
    assert.match(swappedLoras, /cat → corgi/);
    assert.ok(
      swapped.body.embeds[0].fields.some(
        (f: { name: string; value: string }) => f.name === 'Seed' && f.value === '11',
      ),
    );

    const weightButton = track(standIn.click(carol, messageIdOf(open), `weight:${jobId}:0`));
    const modalCall = await callback(weightButton);
    assert.equal(modalCall.body.type, 9);
    assert.equal(modalCall.body.data.custom_id, `weight:${jobId}:0`);
    const submit = track(standIn.submitModal(carol, weightButton, { weight: '0.5' }));
    assert.equal((await callback(submit)).body.type, 5);
    const weighted = await resultEdit(submit);
    const weightedLoras = weighted.body.embeds[0].fields.find(
      (f: { name: string }) => f.name === 'LoRAs',
    ).value;
    assert.match(weightedLoras, /cat → tabby @0\.5/);

    const bad = track(standIn.click(carol, messageIdOf(open), `weight:${jobId}:0`));
    await callback(bad);
    const badSubmit = track(standIn.submitModal(carol, bad, { weight: 'lots' }));
    const refusal = await callback(badSubmit);
    assert.equal(refusal.body.data.flags & 64, 64);
    assert.match(refusal.body.data.content, /'lots' is not a number/);
  });

  it('/loras lists the library with a card select; /lora info shows a card', async () => {
    const list = track(standIn.command(alice, 'loras'));
    const answer = await callback(list);
    assert.equal(answer.body.type, 4);
    assert.equal(answer.body.data.flags & 64, 64);
    const select = answer.body.data.components[0].components[0];
    assert.equal(select.custom_id, 'lora-card');
    assert.deepEqual(
      select.options.map((o: { value: string }) => o.value),
      ['corgi', 'plush', 'tabby'],
    );
    const card = track(standIn.select(alice, messageIdOf(list), 'lora-card', ['plush']));
    const cardAnswer = await callback(card);
    assert.match(cardAnswer.body.data.embeds[0].title, /^plush/);

    const info = track(standIn.command(alice, 'lora', { name: 'tabby' }, { subcommand: 'info' }));
    const infoAnswer = await callback(info);
    assert.match(infoAnswer.body.data.embeds[0].title, /^tabby/);
    const fields = infoAnswer.body.data.embeds[0].fields.map((f: { name: string }) => f.name);
    assert.ok(fields.includes('Trigger words') && fields.includes('Base model'));

    const unknown = track(standIn.command(alice, 'lora', { name: 'tabyy' }, { subcommand: 'info' }));
    assert.match((await callback(unknown)).body.data.content, /did you mean 'tabby'/);
  });

  it('/lora add: refused for members, checked for admins, and then listed for everyone', async () => {
    const good = readFileSync(join(fx, 'loras', 'lora_iv_kohya_locon_unet.safetensors'));
    const upload = standIn.addAttachment('Barn Owl.safetensors', good);

    const member = track(standIn.command(alice, 'lora', { file: upload }, { subcommand: 'add' }));
    const refused = await callback(member);
    assert.equal(refused.body.type, 4);
    assert.equal(refused.body.data.flags & 64, 64);
    assert.match(refused.body.data.content, /Only library admins can add LoRAs/);
    assert.match(refused.body.data.content, /lora-keepers/);
    assert.ok(!app.library.get('barn-owl'));

    const pickled = track(
      standIn.command(
        owner,
        'lora',
        { file: standIn.addAttachment('evil.ckpt', good) },
        { subcommand: 'add' },
      ),
    );
    assert.match((await callback(pickled)).body.data.content, /pickled file, which can run code/);

    const big = standIn.addAttachment('huge.safetensors', new Uint8Array(3 * 1024 * 1024));
    const tooBig = track(standIn.command(owner, 'lora', { file: big }, { subcommand: 'add' }));
    assert.match((await callback(tooBig)).body.data.content, /is 3 MB; LoRAs up to 2 MB can be added/);

    const broken = standIn.addAttachment('broken.safetensors', Buffer.from('{"this is": "not safetensors"}'));
    const bad = track(standIn.command(owner, 'lora', { file: broken }, { subcommand: 'add' }));
    assert.equal((await callback(bad)).body.type, 5);
    const badEdit = await standIn.waitForCall(isOriginalEdit(bad), 20_000);
    assert.match(badEdit.body.content, /^⚠️ 'broken' was not added: .+/);
    assert.ok(!app.library.get('broken'));

    const byRole = track(standIn.command(keeper, 'lora', { file: upload }, { subcommand: 'add' }));
    const deferral = await callback(byRole);
    assert.equal(deferral.body.type, 5);
    assert.equal(deferral.body.data.flags & 64, 64, 'the admin sees the outcome privately');
    const added = await standIn.waitForCall(isOriginalEdit(byRole), 30_000);
    assert.equal(added.body.embeds[0].title, 'Added barn-owl');
    assert.ok(app.library.get('barn-owl')?.usable);

    const list = track(standIn.command(alice, 'loras'));
    const options = (await callback(list)).body.data.components[0].components[0].options;
    assert.ok(
      options.some((o: { value: string }) => o.value === 'barn-owl'),
      'listed for everyone',
    );
    const typing = track(standIn.autocomplete(alice, 'compose', { prompt: 'owl:<barn' }, 'prompt'));
    assert.equal((await callback(typing)).body.data.choices[0].value, 'owl:<barn-owl>');
  });

  it('fits pictures to the interaction attachment_size_limit: WebP or JPEG, never a failed upload', async () => {
    const limit = Math.floor(merge.png.byteLength / 3);
    const i = track(
      standIn.command(
        carol,
        'compose',
        { prompt: 'cat:<tabby> penguin:<plush> in a house', seed: 11, steps: 4, method: 'merge' },
        { attachmentSizeLimit: limit },
      ),
    );
    const result = await resultEdit(i);
    const image = file(result, 'image-');
    assert.match(image.name, /\.(webp|jpg)$/);
    assert.ok(image.bytes.byteLength <= limit, `${image.bytes.byteLength} bytes over ${limit}`);
    assert.ok(['webp', 'jpeg'].includes((await sharp(image.bytes).metadata()).format ?? ''));
    assert.equal(result.body.embeds[0].image.url, `attachment://${image.name}`);
    assert.ok(!standIn.callsFor(i).some((c) => c.status === 413), 'no upload was refused');
  });

  it('a job that outlives the interaction token ends in a channel message, whose buttons work', async () => {
    const i = track(
      standIn.command(gina, 'compose', { prompt: 'cat:<tabby> penguin:<plush> in a house', steps: 4 }),
    );
    await standIn.waitForCall(
      (c) => isOriginalEdit(i)(c) && c.body.embeds?.[0]?.title === 'Composing…',
      2 * MIN,
    );
    standIn.advanceClock(16 * MIN);
    const post = await standIn.waitForCall(
      (c) => c.method === 'POST' && c.route === `/channels/${GUILD.channelId}/messages`,
      2 * MIN,
    );
    assert.ok(post.authorized, 'posted with the bot token');
    assert.equal(post.status, 200);
    assert.ok(post.body.content.startsWith(`<@${gina.id}>`));
    assert.deepEqual(post.body.allowed_mentions.users, [gina.id]);
    assert.match(file(post, 'image-').name, /\.png$/);
    const expiredEdits = standIn.callsFor(i).filter((c) => c.at > post.at - 1 && isOriginalEdit(i)(c));
    assert.deepEqual(expiredEdits, [], 'the expired token is not used');

    const jobId = jobIdOf(post);
    const press = track(standIn.click(gina, post.response.id, `masks:${jobId}`));
    assert.equal((await callback(press)).body.type, 5);
    const shown = await standIn.waitForCall(isOriginalEdit(press), 20_000);
    assert.ok(shown.files.some((f) => f.name.startsWith('masks-')));
    assert.ok(shown.files.some((f) => f.name.startsWith('maps-')));
  });

  it('after a restart, old buttons still work and a job started before it is delivered', async () => {
    const before = track(
      standIn.command(erin, 'compose', {
        prompt: 'cat:<tabby> penguin:<plush> in a house',
        seed: 5,
        // Long enough to still be running when the new adapter is up.
        steps: 100,
        method: 'merge',
      }),
    );
    await callback(before);
    await adapter.stop();
    const identifies = standIn.gateway.identifies.length;
    adapter = await startAdapter(`${standIn.gatewayUrl}-direct`);
    assert.equal(standIn.gateway.identifies.length, identifies + 1, 'a new gateway session');
    assert.deepEqual(standIn.gateway.paths, ['/gateway', '/gateway-direct']);
    const delivered = await resultEdit(before);
    assert.match(file(delivered, 'image-').name, /\.png$/);

    const jobId = jobIdOf(merge.result);
    const press = track(standIn.click(carol, messageIdOf(merge.interaction), `rerun:${jobId}`));
    const again = await resultEdit(press);
    assert.ok(file(again, 'image-').bytes.equals(merge.png), 'the old button reran the stored job');
  });

  it('rate-limits each user: a burst past the bucket gets a private "slow down"', async () => {
    standIn.freezeClock(); // no refill during the burst: exactly the bucket's 30 pass
    let answers: RecordedCall[];
    try {
      const burst = Array.from({ length: 36 }, () => track(standIn.command(frank, 'queue')));
      answers = await Promise.all(burst.map((i) => callback(i)));
    } finally {
      standIn.resumeClock();
    }
    const slowed = answers.filter((a) => /Slow down/.test(a.body.data.content ?? ''));
    assert.equal(slowed.length, 6, `${slowed.length} refused`);
    assert.ok(slowed.every((a) => a.body.data.flags & 64));
    const other = track(standIn.command(alice, 'queue'));
    assert.doesNotMatch(
      (await callback(other)).body.data.content,
      /Slow down/,
      'other users are not affected',
    );
  });

  it("/queue lists the user's recent jobs; /loras pages past 25 with buttons", async () => {
    const mine = track(standIn.command(carol, 'queue'));
    const answer = await callback(mine);
    assert.equal(answer.body.data.flags & 64, 64);
    assert.match(answer.body.data.content, /^Your recent jobs:/);
    assert.match(answer.body.data.content, /cat:<tabby> penguin:<plush> in a house --seed 11/);

    for (let k = 0; k < 27; k++)
      copyFileSync(
        join(fx, 'loras', 'lora_iii_peft_unet_te.safetensors'),
        join(loraDir, `extra-${String(k).padStart(2, '0')}.safetensors`),
      );
    await app.library.rescan();
    const list = track(standIn.command(alice, 'loras'));
    const first = (await callback(list)).body.data;
    assert.equal(first.components[0].components[0].options.length, 25);
    assert.deepEqual(customIds(first.components.slice(1)), ['loras:1']);
    const next = track(standIn.click(alice, messageIdOf(list), 'loras:1'));
    const second = await callback(next);
    assert.equal(second.body.type, 7, 'the list message turns the page in place');
    const options = second.body.data.components[0].components[0].options.map(
      (o: { value: string }) => o.value,
    );
    // barn-owl, corgi, extra-00…26, plush, tabby: 31 LoRAs, 6 on page 2.
    assert.deepEqual(options, ['extra-23', 'extra-24', 'extra-25', 'extra-26', 'plush', 'tabby']);
    assert.deepEqual(customIds(second.body.data.components.slice(1)), ['loras:0']);
  });

  it('no token ever reaches a log line', () => {
    if (process.env.SHOW_LOG) console.log(logLines.join('\n'));
    assert.ok(logLines.length > 5, 'the adapter logged');
    assert.ok(logLines.some((l) => l.includes('connected as')));
    for (const line of logLines) {
      assert.ok(!line.includes(TOKEN), `the bot token in: ${line.slice(0, 80)}`);
      for (const i of sent)
        assert.ok(!line.includes(i.token), `an interaction token in: ${line.slice(0, 80)}`);
    }
    assert.ok(clora, 'the compose ran');
  });
});

describe('Discord renderer limits', () => {
  const button = (id: string): ReplyButton => ({ id, label: id, style: 'secondary' });

  it('splits rows past 5 buttons, drops rows past 5 and ids over 100 characters', () => {
    const rows: ReplyRow[] = [
      { kind: 'buttons', buttons: Array.from({ length: 7 }, (_, k) => button(`b${k}`)) },
      { kind: 'buttons', buttons: [button('x'.repeat(101)), button('ok')] },
      ...Array.from({ length: 4 }, (_, k): ReplyRow => ({ kind: 'buttons', buttons: [button(`r${k}`)] })),
    ];
    const problems: string[] = [];
    const out = renderRows(rows, problems);
    assert.equal(out.length, DISCORD_LIMITS.rows);
    assert.deepEqual(
      out.map((r) => r.components.length),
      [5, 2, 1, 1, 1],
    );
    assert.ok(out.flatMap((r) => r.components).every((c) => 'custom_id' in c && c.custom_id.length <= 100));
    assert.ok(problems.some((p) => p.includes('over 100')));
    assert.ok(problems.some((p) => p.includes('past 5')));
  });

  it('keeps 25 options in a select and pages past them with buttons', () => {
    const options = Array.from({ length: 30 }, (_, k) => ({ label: `lora-${k}`, value: `lora-${k}` }));
    const out = renderRows([
      {
        kind: 'select',
        select: {
          id: 'tweak:job:0:1',
          placeholder: 'New LoRA (page 2/3)',
          options,
          paging: { page: 1, pageCount: 3, previousId: 'tweak:job:0', nextId: 'tweak:job:0:2' },
        },
      },
    ]);
    assert.equal(out.length, 2);
    const select = out[0].components[0];
    assert.ok(select.type === 3 && select.options.length === 25);
    assert.deepEqual(
      out[1].components.map((c) => (c.type === 2 && 'custom_id' in c ? [c.custom_id, c.label] : [])),
      [
        ['tweak:job:0', '◀ Page 1'],
        ['tweak:job:0:2', 'Page 3 ▶'],
      ],
    );
  });

  it('keeps an embed under 6000 characters and 25 fields', async () => {
    const fields = Array.from({ length: 30 }, (_, k) => ({ name: `field ${k}`, value: 'v'.repeat(1000) }));
    const message = await renderReply(
      { kind: 'message', ephemeral: false, card: { title: 't'.repeat(300), fields, tone: 'brand' } },
      { maxAttachmentBytes: 1 << 20 },
    );
    const embed = message.embeds[0];
    assert.ok((embed.title ?? '').length <= 256);
    assert.ok((embed.fields ?? []).length <= 25);
    const size =
      (embed.title ?? '').length +
      (embed.fields ?? []).reduce((n, f) => n + f.name.length + f.value.length, 0);
    assert.ok(size <= 6000, `${size} characters`);
  });

  it("shows a running job's preview inside its progress embed, with the Cancel button", async () => {
    const preview = await encodePng({
      width: 32,
      height: 32,
      data: new Uint8Array(randomBytes(32 * 32 * 3)),
    });
    const message = await renderReply(
      {
        kind: 'progress',
        jobId: 'job-1',
        ephemeral: false,
        progress: {
          state: 'running',
          step: 2,
          totalSteps: 4,
          etaSeconds: 3,
          preview: { data: preview, filename: 'preview-job-1.webp', alt: 'preview', mime: 'image/webp' },
        },
        rows: [{ kind: 'buttons', buttons: [{ id: 'cancel:job-1', label: 'Cancel', style: 'danger' }] }],
      },
      { maxAttachmentBytes: 1 << 20 },
    );
    assert.equal(message.files[0].name, 'preview-job-1.webp');
    assert.equal(message.embeds[0].image?.url, 'attachment://preview-job-1.webp');
    assert.match(message.embeds[0].description ?? '', /^Step 2\/4 /);
    assert.deepEqual(customIds(message.components), ['cancel:job-1']);
  });

  it('re-encodes a picture over the upload limit, and keeps one that fits as it is', async () => {
    const side = 96;
    const data = new Uint8Array(randomBytes(side * side * 3));
    const png = await encodePng({ width: side, height: side, data });
    const image = { data: png, filename: 'image-x.png', alt: 'noise', mime: 'image/png' as const };
    const limit = Math.floor(png.byteLength / 2);
    const small = await renderReply(
      { kind: 'message', ephemeral: false, images: [image] },
      { maxAttachmentBytes: limit },
    );
    assert.ok(small.files[0].attachment.byteLength <= limit);
    assert.match(small.files[0].name, /^image-x\.(webp|jpg)$/);
    const same = await renderReply(
      { kind: 'message', ephemeral: false, images: [image] },
      { maxAttachmentBytes: 1 << 20 },
    );
    assert.ok(same.files[0].attachment.equals(png));
  });
});
