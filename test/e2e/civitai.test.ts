// /lora add civitai:… end to end: the real app (library checked against the tiny SD 1.5
// fixture) behind discord.js and Bolt, talking to the Discord and Slack stand-ins, importing
// from the Civitai stand-in. Admins only; each of Civitai's errors reaches the admin as a
// message saying what to do; the LoRA is listed for everyone once added; admins who name a
// LoRA the library lacks are told how to add it, members are not.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Adapter } from '../../bot/adapter.ts';
import { type App, startApp } from '../../bot/app.ts';
import { registerCommands, startDiscord } from '../../bot/discord/index.ts';
import { createLogger } from '../../bot/log.ts';
import { startPlayground } from '../../bot/playground/index.ts';
import { type SlackAdapter, startSlack } from '../../bot/slack/index.ts';
import { loadConfig } from '../../config/index.ts';
import { fixtureDir, fixtureLoraFolder } from '../fixtures.ts';
import { CivitaiStandIn } from '../standins/civitai.ts';
import { DiscordStandIn, type Person, type RecordedCall, type SentInteraction } from '../standins/discord.ts';
import { type SlackBlock, SlackStandIn } from '../standins/slack.ts';

const DISCORD_TOKEN = 'MTEwMDAwMDAwMDAwMDAwMDAwMQ.GhAbCd.not-a-real-token_Civ9xR2vL8kP4wY7tN3mB';
const APP_ID = '1100000000000000001';
const GUILD = { id: '1300000000000000000', name: 'Test server', channelId: '1300000000000000001' };
const MANAGE_GUILD = 1n << 5n;
const SLACK_BOT_TOKEN = 'xoxb-1111111111-2222222222-civitaiBotTokenValue';
const SIGNING_SECRET = 'civitai-signing-secret-5f0c8e1a9b';
const CIVITAI_KEY = 'civitai-operator-key-9f8e7d6c5b4a';
const CHANNEL = 'C0GENERAL';
const SLACK_ADMIN = 'U0ADMIN';
const SLACK_MEMBER = 'U0BOB';

const member: Person = { id: '1400000000000000001', username: 'alice' };
const owner: Person = { id: '1400000000000000008', username: 'owner', permissions: MANAGE_GUILD };

function textOf(message: { blocks: SlackBlock[]; text: string }): string {
  return [message.text, JSON.stringify(message.blocks)].join('\n');
}

describe('/lora add from Civitai on Discord, Slack and the playground', { timeout: 180_000 }, () => {
  const fx = fixtureDir();
  const lora = (file: string) => new Uint8Array(readFileSync(join(fx, 'loras', file)));
  const root = mkdtempSync(join(tmpdir(), 'clora-civitai-e2e-'));
  let civitai: CivitaiStandIn;
  let discordStandIn: DiscordStandIn;
  let slackStandIn: SlackStandIn;
  let app: App;
  let discord: Adapter;
  let slack: SlackAdapter;
  let playground: Adapter;
  let events: string;

  before(async () => {
    civitai = await CivitaiStandIn.start({ apiKey: CIVITAI_KEY });
    discordStandIn = await DiscordStandIn.start({
      token: DISCORD_TOKEN,
      applicationId: APP_ID,
      guild: { ...GUILD, roles: [] },
      heartbeatIntervalMs: 300,
    });
    slackStandIn = await SlackStandIn.start({
      botToken: SLACK_BOT_TOKEN,
      signingSecret: SIGNING_SECRET,
      channels: [CHANNEL],
      admins: [SLACK_ADMIN],
    });
    const config = loadConfig({
      MODEL_PATH: join(fx, 'model'),
      LORA_DIR: fixtureLoraFolder(root),
      CACHE_DIR: join(root, 'cache'),
      MAX_SIZE: '128',
      PLAYGROUND_PORT: '0',
      LORA_UPLOAD_MAX_MB: '2',
      LOG_LEVEL: 'silent',
      DISCORD_TOKEN,
      DISCORD_APPLICATION_ID: APP_ID,
      DISCORD_GUILD_ID: GUILD.id,
      DISCORD_API_URL: discordStandIn.apiUrl,
      SLACK_BOT_TOKEN,
      SLACK_SIGNING_SECRET: SIGNING_SECRET,
      SLACK_API_URL: slackStandIn.apiUrl,
      CIVITAI_API_URL: civitai.apiUrl,
      CIVITAI_TOKEN: CIVITAI_KEY,
    });
    app = await startApp(config, { log: createLogger('silent') });
    await registerCommands(config);
    discord = await startDiscord(app, { rateLimit: { burst: 30, perSecond: 10 } });
    slack = await startSlack(app, { port: 0, host: '127.0.0.1', rateLimit: { burst: 30, perSecond: 10 } });
    events = `http://127.0.0.1:${slack.port}/slack/events`;
    playground = await startPlayground(app);
  });

  after(async () => {
    await discord?.stop();
    await slack?.stop();
    await playground?.stop();
    // Closing the engine thread while it still compiles aborts the process in onnxruntime.
    await app?.engine?.ready().catch(() => undefined);
    await app?.close();
    await Promise.all([civitai?.close(), discordStandIn?.close(), slackStandIn?.close()]);
    rmSync(root, { recursive: true, force: true });
  });

  const isOriginalEdit = (i: SentInteraction) => (c: RecordedCall) =>
    c.method === 'PATCH' && c.route.endsWith(`/${i.token}/messages/@original`);
  const callback = (i: SentInteraction) =>
    discordStandIn.waitForCall((c) => c.route === `/interactions/${i.id}/${i.token}/callback`, 5000);

  /** Runs `/lora add civitai:…` on Discord; the private answer's text (content and embed). */
  async function discordAdd(who: Person, reference: string, extra: Record<string, string> = {}) {
    const i = discordStandIn.command(who, 'lora', { civitai: reference, ...extra }, { subcommand: 'add' });
    const first = await callback(i);
    if (first.body.type === 4) return { deferred: false, body: first.body.data };
    assert.equal(first.body.type, 5, 'deferred');
    assert.equal(first.body.data.flags & 64, 64, 'privately');
    return { deferred: true, body: (await discordStandIn.waitForCall(isOriginalEdit(i), 30_000)).body };
  }
  const shown = (body: { content?: string; embeds?: unknown[] }) =>
    `${body.content ?? ''}\n${JSON.stringify(body.embeds ?? [])}`;

  async function slackCommand(user: string, name: string, text: string) {
    const from = slackStandIn.messages.length;
    const answer = await slackStandIn.deliver(
      events,
      slackStandIn.slashCommand(name, text, { user, channel: CHANNEL }),
    );
    assert.equal(answer.status, 200);
    const reply = await slackStandIn.waitFor(`the answer to ${name} ${text}`, () =>
      slackStandIn.messages.slice(from).find((m) => m.ephemeralTo === user),
    );
    return textOf(reply);
  }

  it('Discord: an admin adds a LoRA by model-version id; members are refused; everyone can use it', async () => {
    const { modelId, versionId } = civitai.addModel({
      name: 'Snow Fox',
      trainedWords: ['snwfx'],
      file: lora('lora_iv_kohya_locon_unet.safetensors'),
    });
    const refused = await discordAdd(member, `civitai:${versionId}`);
    assert.equal(refused.deferred, false);
    assert.match(refused.body.content, /Only library admins can add LoRAs/);
    assert.ok(!civitai.apiRequests.some((r) => r.path.includes(String(versionId))), 'Civitai not asked');

    const added = await discordAdd(owner, `civitai:${versionId}`);
    assert.equal(added.body.embeds[0].title, 'Added snow-fox');
    assert.match(
      shown(added.body),
      new RegExp(`civitai.com/models/${modelId}\\?modelVersionId=${versionId}`),
    );
    assert.match(shown(added.body), /snwfx/);
    assert.ok(app.library.get('snow-fox')?.usable);

    const card = discordStandIn.command(member, 'lora', { name: 'snow-fox' }, { subcommand: 'info' });
    const first = await callback(card);
    const body =
      first.body.type === 4
        ? first.body.data
        : (await discordStandIn.waitForCall(isOriginalEdit(card), 20_000)).body;
    assert.match(shown(body), /Civitai licence/);
  });

  it("Discord: each of Civitai's errors comes back as a message saying what to do", async () => {
    const file = lora('lora_i_kohya_unet_te.safetensors');
    const sdxl = civitai.addModel({ name: 'XL Cat', baseModel: 'SDXL 1.0', file });
    const corrupt = civitai.addModel({ name: 'Torn', corrupt: true, file });
    assert.match(
      shown((await discordAdd(owner, 'civitai:987654')).body),
      /Civitai has no model version 987654/,
    );
    assert.match(
      shown((await discordAdd(owner, `urn:air:sd1:lora:civitai:${sdxl.modelId}@${sdxl.versionId}`)).body),
      /made for SDXL 1\.0; this bot composes SD 1\.5 LoRAs only/,
    );
    assert.match(
      shown((await discordAdd(owner, `civitai:${corrupt.versionId}`)).body),
      /not the one Civitai lists .*nothing was added/,
    );
    assert.match(shown((await discordAdd(owner, 'civitai:owl')).body), /write `civitai:<model-version id>`/);
    const both = discordStandIn.command(
      owner,
      'lora',
      { civitai: 'civitai:1', file: discordStandIn.addAttachment('x.safetensors', file) },
      { subcommand: 'add' },
    );
    assert.match((await callback(both)).body.data.content, /Give the LoRA one way/);
    for (const name of ['xl-cat', 'torn']) assert.ok(!app.library.get(name));
  });

  it('Discord: a gated model downloads with CIVITAI_TOKEN, which never reaches the file host', async () => {
    const gated = civitai.addModel({
      name: 'Members Moth',
      gated: true,
      file: lora('lora_ii_kohya_unet_attn_ff.safetensors'),
    });
    const link = `https://civitai.com/models/${gated.modelId}/members-moth?modelVersionId=${gated.versionId}`;
    const added = await discordAdd(owner, link, { name: 'moth' });
    assert.equal(added.body.embeds[0].title, 'Added moth', shown(added.body));
    const download = civitai.apiRequests.find((r) =>
      r.path.startsWith(`/api/download/models/${gated.versionId}`),
    );
    assert.equal(download?.authorization, `Bearer ${CIVITAI_KEY}`);
    assert.ok(civitai.fileHostRequests.every((r) => r.authorization === undefined));
  });

  it('Discord: an admin naming an unknown LoRA is told how to add it from Civitai; a member is not', async () => {
    const asOwner = discordStandIn.command(owner, 'compose', { prompt: 'owl:<great-horned> in a barn' });
    assert.match((await callback(asOwner)).body.data.content, /add it with `\/lora add civitai:<id>`/);
    const asMember = discordStandIn.command(member, 'compose', { prompt: 'owl:<great-horned> in a barn' });
    const content = (await callback(asMember)).body.data.content;
    assert.match(content, /unknown LoRA 'great-horned'/);
    assert.doesNotMatch(content, /lora add/);

    const cardText = async (who: Person) => {
      const i = discordStandIn.command(who, 'lora', { name: 'great-horned' }, { subcommand: 'info' });
      const first = await callback(i);
      return shown(
        first.body.type === 4
          ? first.body.data
          : (await discordStandIn.waitForCall(isOriginalEdit(i), 20_000)).body,
      );
    };
    assert.match(
      await cardText(owner),
      /unknown LoRA 'great-horned'[\s\S]*add it with `\/lora add civitai:<id>`/,
    );
    assert.doesNotMatch(await cardText(member), /lora add/);
  });

  it('Slack: /lora add civitai:<id> for admins (asked of users.info); refused for members; a missing id and a taken name explained', async () => {
    const { versionId } = civitai.addModel({
      name: 'Paper Crane',
      trainedWords: ['origami crane'],
      file: lora('lora_iii_peft_unet_te.safetensors'),
    });
    assert.match(
      await slackCommand(SLACK_MEMBER, '/lora', `add civitai:${versionId}`),
      /Only workspace admins/,
    );
    assert.ok(!app.library.get('paper-crane'));
    const added = await slackCommand(SLACK_ADMIN, '/lora', `add civitai:${versionId} crane`);
    assert.match(added, /Added crane/);
    assert.match(added, /origami crane/);
    assert.ok(app.library.get('crane')?.usable);
    assert.ok(slackStandIn.callsOf('users.info').some((c) => c.args.user === SLACK_ADMIN));

    const missing = await slackCommand(SLACK_ADMIN, '/lora', 'add civitai:4242424');
    assert.match(missing, /Civitai has no model version 4242424/);
    const taken = await slackCommand(SLACK_ADMIN, '/lora', `add civitai:${versionId} crane`);
    assert.match(taken, /a LoRA named 'crane' already exists/);
  });

  it('Slack: a gated model with a revoked CIVITAI_TOKEN gets 401, and the admin is told to check the token', async () => {
    const gated = civitai.addModel({
      name: 'Locked Lynx',
      gated: true,
      file: lora('lora_i_kohya_unet_te.safetensors'),
    });
    civitai.rotateKey('a-new-key-the-bot-does-not-have');
    try {
      const refused = await slackCommand(SLACK_ADMIN, '/lora', `add civitai:${gated.versionId}`);
      assert.match(refused, /Civitai refused the file to this bot's CIVITAI_TOKEN/);
      assert.match(refused, /Nothing was added/);
    } finally {
      civitai.rotateKey(CIVITAI_KEY);
    }
    assert.ok(!app.library.get('locked-lynx'));
    const download = civitai.apiRequests.filter((r) =>
      r.path.startsWith(`/api/download/models/${gated.versionId}`),
    );
    assert.equal(download.length, 1);
  });

  it('Slack: an admin naming an unknown LoRA in /compose or /lora gets the Civitai hint; a member does not', async () => {
    assert.match(
      await slackCommand(SLACK_ADMIN, '/compose', 'bird:<kingfisher> by a river'),
      /lora add civitai:&lt;id&gt;|lora add civitai:<id>/,
    );
    const plain = await slackCommand(SLACK_MEMBER, '/compose', 'bird:<kingfisher> by a river');
    assert.match(plain, /unknown LoRA 'kingfisher'/);
    assert.doesNotMatch(plain, /lora add/);
    assert.match(await slackCommand(SLACK_ADMIN, '/lora', 'kingfisher'), /add it with `\/lora add civitai:/);
    assert.doesNotMatch(await slackCommand(SLACK_MEMBER, '/lora', 'kingfisher'), /lora add/);
  });

  it('the playground: its user is the local operator, so /lora add civitai:<id> imports', async () => {
    const { versionId } = civitai.addModel({
      name: 'Tin Robot',
      trainedWords: ['tnrbt'],
      file: lora('lora_i_kohya_unet_te.safetensors'),
    });
    const base = playground.address.replace(/\/$/, '');
    const res = await fetch(`${base}/api/command`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ text: `/lora add civitai:${versionId} --replace`, tab: 'civitai-tab-01' }),
    });
    assert.equal(res.status, 200);
    const reply = JSON.stringify(await res.json());
    assert.match(reply, /Added tin-robot/);
    assert.match(reply, /tnrbt/);
    assert.ok(app.library.get('tin-robot')?.usable);
  });
});
