// Slack's HTTP events as the adapter receives them, without a model: which requests are let in
// (signature and request time, both directions) and how each user's request rate is held,
// against the Slack stand-in (test/standins/slack.ts).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type App, startApp } from '../../bot/app.ts';
import { createLogger } from '../../bot/log.ts';
import { type SlackAdapter, startSlack } from '../../bot/slack/index.ts';
import { loadConfig } from '../../config/index.ts';
import { SlackStandIn } from '../standins/slack.ts';

const BOT_TOKEN = 'xoxb-1111111111-2222222222-standinBotTokenValue';
const SIGNING_SECRET = 'standin-signing-secret-5f0c8e1a9b';
const CHANNEL = 'C0GENERAL';

describe('Slack HTTP requests', { timeout: 60_000 }, () => {
  let standIn: SlackStandIn;
  let app: App;
  let slack: SlackAdapter;
  let events: string;
  let work: string;

  before(async () => {
    standIn = await SlackStandIn.start({
      botToken: BOT_TOKEN,
      signingSecret: SIGNING_SECRET,
      channels: [CHANNEL],
    });
    work = mkdtempSync(join(tmpdir(), 'clora-slack-requests-'));
    const config = loadConfig({
      LORA_DIR: work,
      SLACK_BOT_TOKEN: BOT_TOKEN,
      SLACK_SIGNING_SECRET: SIGNING_SECRET,
      SLACK_API_URL: standIn.apiUrl,
      LOG_LEVEL: 'silent',
    });
    app = await startApp(config, { log: createLogger('silent') });
    slack = await startSlack(app, { port: 0, host: '127.0.0.1' });
    events = `http://127.0.0.1:${slack.port}/slack/events`;
  });

  after(async () => {
    await slack?.stop();
    await app?.close();
    await standIn?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  const queueCommand = (user = 'U0ALICE') => standIn.slashCommand('/queue', '', { user, channel: CHANNEL });
  const nowSeconds = () => Math.floor(Date.now() / 1000);

  test('a correctly signed request dated more than five minutes ahead is refused, as one five minutes old is', async () => {
    const responses = standIn.responses.length;
    for (const offset of [10 * 60, 5 * 60 + 30, -(6 * 60)]) {
      const answer = await standIn.deliver(events, queueCommand(), { timestamp: nowSeconds() + offset });
      assert.equal(answer.status, 401, `dated ${offset} s from now`);
    }
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(standIn.responses.length, responses, 'no refused request got an answer');

    const near = await standIn.deliver(events, queueCommand(), { timestamp: nowSeconds() + 4 * 60 });
    assert.equal(near.status, 200, 'four minutes of clock skew are allowed');
    await standIn.waitFor('the /queue answer', () => standIn.responses.length > responses);
  });

  test('a request without a readable timestamp is refused', async () => {
    const body = new URLSearchParams(queueCommand()).toString();
    const answer = await fetch(events, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        'x-slack-request-timestamp': 'soon',
        'x-slack-signature': 'v0=00',
      },
      body,
    });
    assert.equal(answer.status, 401);
  });
});
