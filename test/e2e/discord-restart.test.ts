// A Discord job that finishes while no bot runs (BullMQ on the local Redis, a worker with the
// engine on the tiny fixture model, the Discord stand-in): the next bot to start delivers it
// into the interaction's reply, once, and a further restart delivers nothing again.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Adapter } from '../../bot/adapter.ts';
import { type App, startApp } from '../../bot/app.ts';
import { registerCommands, startDiscord } from '../../bot/discord/index.ts';
import { EngineThread, engineOptions } from '../../bot/engine-host/engine-client.ts';
import { composeProcessor } from '../../bot/engine-host/processor.ts';
import { LoraCheckThread } from '../../bot/library/check-client.ts';
import { LoraLibrary } from '../../bot/library/index.ts';
import { createLogger } from '../../bot/log.ts';
import { BullQueue, type JobRunner, startBullRunner } from '../../bot/queue/index.ts';
import type { ComposeJobData, ComposeJobProgress, ComposeJobValue } from '../../commands/jobs.ts';
import { type Config, loadConfig } from '../../config/index.ts';
import { openCheckpoint } from '../../engine/weights/checkpoint.ts';
import { fixtureDir, fixtureLoraFolder } from '../fixtures.ts';
import { DiscordStandIn, type RecordedCall, type SentInteraction } from '../standins/discord.ts';

const TOKEN = 'MTEwMDAwMDAwMDAwMDAwMDAwMQ.GhAbCd.not-a-real-token_Zq9xR2vL8kP4wY7tN3mB';
const APP_ID = '1100000000000000001';
const GUILD = { id: '1300000000000000000', name: 'Test server', channelId: '1300000000000000001' };
const alice = { id: '1400000000000000001', username: 'alice' };
const redisUrl = process.env.CLORA_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const queueName = `discord-restart-${randomUUID().slice(0, 8)}`;
const log = createLogger('silent');
/** How long the engine may take for one small job on a busy machine. */
const SLOW = 240_000;

async function waitFor<T>(
  what: string,
  find: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 60_000,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const found = await find();
    if (found) return found;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('a Discord job across a bot restart', { timeout: 600_000 }, () => {
  let standIn: DiscordStandIn;
  let config: Config;
  let work: string;
  let engine: EngineThread;
  let checks: LoraCheckThread;
  let library: LoraLibrary;
  let worker: JobRunner;
  let observer: BullQueue<ComposeJobData, ComposeJobValue, ComposeJobProgress>;
  let bot: { app: App; adapter: Adapter } | undefined;
  let held = 0;
  let release: () => void = () => {};
  const gate = new Promise<void>((r) => {
    release = r;
  });

  async function startBot() {
    const app = await startApp(config, { log, queueName });
    const adapter = await startDiscord(app, { log });
    app.listen();
    return { app, adapter };
  }

  async function stopBot() {
    await bot?.adapter.stop();
    await bot?.app.close();
    bot = undefined;
  }

  const resultEdits = (i: SentInteraction) =>
    standIn.calls.filter(
      (c: RecordedCall) =>
        c.method === 'PATCH' &&
        c.route.endsWith(`/${i.token}/messages/@original`) &&
        c.files.some((f) => f.name.startsWith('image-')),
    );

  before(async () => {
    standIn = await DiscordStandIn.start({
      token: TOKEN,
      applicationId: APP_ID,
      guild: { ...GUILD, roles: [] },
      heartbeatIntervalMs: 300,
    });
    work = mkdtempSync(join(tmpdir(), 'clora-discord-restart-'));
    const modelPath = join(fixtureDir(), 'model');
    config = loadConfig({
      REDIS_URL: redisUrl,
      MODEL_PATH: modelPath,
      LORA_DIR: fixtureLoraFolder(work),
      CACHE_DIR: join(work, 'cache'),
      DISCORD_TOKEN: TOKEN,
      DISCORD_APPLICATION_ID: APP_ID,
      DISCORD_GUILD_ID: GUILD.id,
      DISCORD_API_URL: standIn.apiUrl,
      MAX_SIZE: '128',
      LOG_LEVEL: 'silent',
    });
    await registerCommands(config);
    engine = new EngineThread(engineOptions(config));
    const ck = openCheckpoint(modelPath);
    checks = new LoraCheckThread({ modelPath });
    library = await LoraLibrary.open(
      config.engine.loraDir,
      { unet: ck.unet.weights, textEncoder: ck.textEncoder.weights },
      { checker: checks.check },
    );
    const processor = composeProcessor(engine, library);
    // The worker, as `npm run worker` runs it, with the job's end held until the bot is down.
    worker = await startBullRunner<ComposeJobData, ComposeJobValue, ComposeJobProgress>(
      async (job) => {
        const output = await processor(job);
        held++;
        await gate;
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
    release();
    await stopBot();
    await worker?.close();
    await observer?.close();
    await engine?.close();
    library?.close();
    await checks?.close();
    await standIn?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test('delivered once by the next bot, never again after another restart', async () => {
    const interaction = standIn.command(alice, 'compose', {
      prompt: 'cat:<tabby> in a house',
      seed: 5,
      steps: 2,
      method: 'merge',
    });
    await standIn.waitForCall(
      (c) => c.route === `/interactions/${interaction.id}/${interaction.token}/callback`,
      60_000,
    );
    const jobId = await waitFor('the job id on the reply’s Cancel button', () =>
      standIn
        .callsFor(interaction)
        .map((c) => JSON.stringify(c.body ?? {}).match(/"cancel:([0-9a-f-]{36})"/)?.[1])
        .find((id) => id !== undefined),
    );
    await waitFor('the job to reach the end of its run', () => held > 0, SLOW);
    await stopBot();
    release();
    await waitFor('the job to complete', async () => (await observer.get(jobId))?.state === 'completed');
    assert.equal(resultEdits(interaction).length, 0, 'nobody delivered it yet');

    bot = await startBot();
    await waitFor('the result in the reply', () => resultEdits(interaction).length > 0);
    assert.ok((await observer.get(jobId))?.delivered);

    await stopBot();
    bot = await startBot();
    await new Promise((r) => setTimeout(r, 2000));
    assert.equal(resultEdits(interaction).length, 1, 'exactly one result');
  });
});
