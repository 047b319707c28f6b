// A bot that restarts while Slack jobs run: the real bot (BullMQ on the local Redis, a worker
// with the engine on the tiny fixture model) against the Slack stand-in. A job running across
// a restart, and one that finishes while no bot is up, each reach their user exactly once, in
// the status message and thread the first bot started.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type App, startApp } from '../../bot/app.ts';
import { EngineThread, engineOptions } from '../../bot/engine-host/engine-client.ts';
import { composeProcessor } from '../../bot/engine-host/processor.ts';
import { LoraCheckThread } from '../../bot/library/check-client.ts';
import { LoraLibrary } from '../../bot/library/index.ts';
import { createLogger } from '../../bot/log.ts';
import { BullQueue, type JobRunner, startBullRunner } from '../../bot/queue/index.ts';
import { type SlackAdapter, startSlack } from '../../bot/slack/index.ts';
import type { ComposeJobData, ComposeJobProgress, ComposeJobValue } from '../../commands/jobs.ts';
import { type Config, loadConfig } from '../../config/index.ts';
import { openCheckpoint } from '../../engine/weights/checkpoint.ts';
import { fixtureDir, fixtureLoraFolder } from '../fixtures.ts';
import { SlackStandIn, type StoredMessage } from '../standins/slack.ts';

const BOT_TOKEN = 'xoxb-1111111111-2222222222-standinBotTokenValue';
const SIGNING_SECRET = 'standin-signing-secret-5f0c8e1a9b';
const CHANNEL = 'C0GENERAL';
const ALICE = 'U0ALICE';
const redisUrl = process.env.CLORA_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const queueName = `slack-restart-${randomUUID().slice(0, 8)}`;
const log = createLogger('silent');
/** How long the engine may take for one small job on a busy machine. */
const SLOW = 240_000;

interface Bot {
  app: App;
  slack: SlackAdapter;
  events: string;
}

/** Holds each job's end (its result computed, not yet settled) until the test lets it go. */
class Gate {
  held = 0;
  private open: (() => void)[] = [];
  async pass(): Promise<void> {
    this.held++;
    await new Promise<void>((r) => this.open.push(r));
  }
  release(): void {
    for (const r of this.open.splice(0)) r();
  }
}

describe('Slack jobs across a bot restart', { timeout: 600_000 }, () => {
  let standIn: SlackStandIn;
  let config: Config;
  let work: string;
  let engine: EngineThread;
  let library: LoraLibrary;
  let checks: LoraCheckThread;
  let worker: JobRunner;
  let observer: BullQueue<ComposeJobData, ComposeJobValue, ComposeJobProgress>;
  let bot: Bot | undefined;
  const gate = new Gate();

  async function startBot(): Promise<Bot> {
    const app = await startApp(config, { log, queueName });
    const slack = await startSlack(app, { port: 0, host: '127.0.0.1', progressIntervalMs: 200 });
    app.listen();
    return { app, slack, events: `http://127.0.0.1:${slack.port}/slack/events` };
  }

  async function stopBot(): Promise<void> {
    await bot?.slack.stop();
    await bot?.app.close();
    bot = undefined;
  }

  /** /compose through the running bot; returns its status message and job id. */
  async function compose(text: string): Promise<{ status: StoredMessage; jobId: string }> {
    assert.ok(bot);
    const from = standIn.messages.length;
    const answer = await standIn.deliver(
      bot.events,
      standIn.slashCommand('/compose', text, { user: ALICE, channel: CHANNEL }),
    );
    assert.equal(answer.status, 200);
    const status = await standIn.waitFor('the status message', () =>
      standIn.messages
        .slice(from)
        .find((m) => m.channel === CHANNEL && !m.ephemeralTo && m.files.length === 0),
    );
    const cancel = JSON.stringify(status.blocks).match(/"action_id":"cancel:([^"]+)"/);
    assert.ok(cancel, 'the status message has a Cancel button naming the job');
    return { status, jobId: cancel[1] };
  }

  const uploadsFor = (jobId: string) =>
    standIn.messages.filter((m) => m.files.length > 0 && m.files.some((f) => f.filename.includes(jobId)));

  before(async () => {
    standIn = await SlackStandIn.start({
      botToken: BOT_TOKEN,
      signingSecret: SIGNING_SECRET,
      channels: [CHANNEL],
    });
    work = mkdtempSync(join(tmpdir(), 'clora-slack-restart-'));
    const fx = fixtureDir();
    config = loadConfig({
      REDIS_URL: redisUrl,
      MODEL_PATH: join(fx, 'model'),
      LORA_DIR: fixtureLoraFolder(work),
      CACHE_DIR: join(work, 'cache'),
      SLACK_BOT_TOKEN: BOT_TOKEN,
      SLACK_SIGNING_SECRET: SIGNING_SECRET,
      SLACK_API_URL: standIn.apiUrl,
      MAX_SIZE: '128',
      LOG_LEVEL: 'silent',
    });
    // The worker, as `npm run worker` runs it, with each job's end held at the gate.
    engine = new EngineThread(engineOptions(config));
    const modelPath = join(fx, 'model');
    const ck = openCheckpoint(modelPath);
    checks = new LoraCheckThread({ modelPath });
    library = await LoraLibrary.open(
      config.engine.loraDir,
      { unet: ck.unet.weights, textEncoder: ck.textEncoder.weights },
      { checker: checks.check },
    );
    const processor = composeProcessor(engine, library);
    worker = await startBullRunner<ComposeJobData, ComposeJobValue, ComposeJobProgress>(
      async (job) => {
        const output = await processor(job);
        await gate.pass();
        return output;
      },
      { redisUrl, queueName },
    );
    observer = await BullQueue.open({
      redisUrl,
      queueName,
      limits: { perUser: 1, perScope: 1 },
      resultTtlMs: 60_000,
    });
    await engine.ready();
    bot = await startBot();
  });

  after(async () => {
    gate.release();
    await stopBot();
    await worker?.close();
    await observer?.close();
    await engine?.close();
    library?.close();
    await checks?.close();
    await standIn?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test('a job running when the bot restarts is adopted: its status finished, its picture posted once', async () => {
    const { status, jobId } = await compose(
      'cat:<tabby> penguin:<plush> in a house --steps 2 --seed 3 --method merge',
    );
    await standIn.waitFor('the job to hold at the gate', () => gate.held === 1, SLOW);
    assert.equal((await observer.get(jobId))?.state, 'running');

    await stopBot();
    const editsBefore = status.versions.length;
    bot = await startBot();
    gate.release();

    const [upload] = await standIn.waitFor(
      'the picture',
      () => uploadsFor(jobId).length > 0 && uploadsFor(jobId),
    );
    assert.equal(upload.channel, CHANNEL);
    await standIn.waitFor('the status to say done', () => /Done in/.test(status.text));
    assert.ok(
      status.versions.length > editsBefore,
      'the restarted bot edited the first bot’s status message',
    );
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(uploadsFor(jobId).length, 1, 'exactly one picture');
  });

  test('a job that finishes while no bot runs is delivered once by the next bot, and never again', async () => {
    const { status, jobId } = await compose('cat:<tabby> in a garden --steps 2 --seed 4 --method merge');
    await standIn.waitFor('the job to hold at the gate', () => gate.held === 2, SLOW);

    await stopBot();
    gate.release();
    await standIn.waitFor(
      'the job to complete',
      async () => (await observer.get(jobId))?.state === 'completed',
    );
    assert.equal(uploadsFor(jobId).length, 0, 'nobody delivered it yet');

    bot = await startBot();
    await standIn.waitFor('the picture', () => uploadsFor(jobId).length > 0);
    await standIn.waitFor('the status to say done', () => /Done in/.test(status.text));
    assert.ok((await observer.get(jobId))?.delivered);

    // Another restart replays nothing a user would see twice.
    await stopBot();
    bot = await startBot();
    await new Promise((r) => setTimeout(r, 2000));
    assert.equal(uploadsFor(jobId).length, 1, 'exactly one picture');
    assert.equal(standIn.messages.filter((m) => m.files.length > 0).length, 2, 'one picture per job in all');
  });
});
