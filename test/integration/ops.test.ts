// What an operator sees: /healthz and /metrics on METRICS_PORT around the real app (a job on
// the tiny SD 1.5 fixture moves the counters), BullMQ's queue metrics and a Redis that cannot
// be reached, LOG_FORMAT=json (parsed, still redacted), and the entry points themselves —
// the playground, the Discord-only and the Slack bot from `bot/main.ts`, and `npm run worker` —
// each answering on METRICS_PORT and stopping cleanly on SIGTERM.

import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type App, startApp } from '../../bot/app.ts';
import { createLogger } from '../../bot/log.ts';
import { type Ops, startOps } from '../../bot/ops/index.ts';
import type { ChatContext } from '../../commands/service.ts';
import { loadConfig } from '../../config/index.ts';
import { fixtureDir, fixtureLoraFolder, repoRoot } from '../fixtures.ts';
import { DiscordStandIn } from '../standins/discord.ts';
import { SlackStandIn } from '../standins/slack.ts';

const fx = fixtureDir();
const redisUrl = process.env.CLORA_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const root = mkdtempSync(join(tmpdir(), 'clora-ops-'));
const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const clean of cleanups.reverse()) await clean().catch(() => undefined);
  rmSync(root, { recursive: true, force: true });
});

const OPS = { logFormat: 'text', metricsPort: 0, metricsHost: '127.0.0.1', shutdownGraceSeconds: 5 } as const;

async function get(port: number, path: string) {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, type: res.headers.get('content-type') ?? '', text: await res.text() };
}

async function health(port: number) {
  const r = await get(port, '/healthz');
  return { status: r.status, body: JSON.parse(r.text) };
}

/** A sample's value from Prometheus text, e.g. sample(text, 'clora_jobs_total', {outcome: 'completed'}). */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3]);
  }
  return undefined;
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

describe('/healthz and /metrics around the app', { timeout: 180_000 }, () => {
  let ops: Ops;
  let app: App;

  it('answers 503 "starting" until the app is watched, then 503 while the engine loads, then 200', async () => {
    const config = loadConfig({
      MODEL_PATH: join(fx, 'model'),
      LORA_DIR: fixtureLoraFolder(join(root, 'app')),
      CACHE_DIR: join(root, 'cache'),
      MAX_SIZE: '128',
      GUIDANCE_ITERATIONS: '2',
    });
    ops = (await startOps({ ops: OPS }))!;
    cleanups.push(() => ops.close());
    const starting = await health(ops.server.port);
    assert.equal(starting.status, 503);
    assert.match(starting.body.reason, /^starting/);

    app = await startApp(config, { log: createLogger('silent'), instrument: ops.instrument });
    cleanups.push(async () => {
      await app.engine?.ready().catch(() => undefined);
      await app.close();
    });
    ops.watch({ library: app.library, engine: app.engine });
    const early = await health(ops.server.port);
    if (early.status === 503) assert.equal(early.body.reason, 'engine: loading the model');
    await app.engine?.ready();
    const ready = await health(ops.server.port);
    assert.equal(ready.status, 200);
    assert.deepEqual(ready.body.checks, {
      engine: 'model loaded',
      queue: 'in this process',
      library: '2 LoRAs scanned',
    });
  });

  it('a job moves the counters (seconds per job and step, guided iterations, LoRAs, memory); drain lets it finish', async () => {
    const ctx: ChatContext = {
      platform: 'playground',
      userId: 'u1',
      userName: 'u1',
      scope: 'ops-test',
      channel: 'c1',
      isAdmin: false,
    };
    const done = new Promise<void>((resolve, reject) => {
      app.queue.on('completed', () => resolve());
      app.queue.on('failed', (e) => reject(new Error(e.error.message)));
    });
    const outcome = await app.commands.compose(
      'cat:<tabby> penguin:<plush> in a house --steps 2 --size 128x128 --seed 7',
      ctx,
    );
    assert.ok(outcome.jobId, JSON.stringify(outcome.reply));
    await until('the job running', async () =>
      (await app.queue.get(outcome.jobId!))?.state === 'running' ? true : undefined,
    );
    // SIGTERM's first half in the bot: the running job may finish within the grace.
    await app.drain(120_000);
    assert.equal((await app.queue.get(outcome.jobId))?.state, 'completed');
    await done;
    const metrics = await get(ops.server.port, '/metrics');
    assert.equal(metrics.status, 200);
    assert.match(metrics.type, /^text\/plain; version=0\.0\.4/);
    const m = metrics.text;
    assert.equal(sample(m, 'clora_jobs_total', { method: 'clora', outcome: 'completed' }), 1);
    assert.equal(sample(m, 'clora_job_seconds_count', { method: 'clora' }), 1);
    assert.ok((sample(m, 'clora_job_seconds_sum', { method: 'clora' }) ?? 0) > 0);
    assert.equal(sample(m, 'clora_step_seconds_count', { method: 'clora' }), 2);
    assert.ok((sample(m, 'clora_guided_iterations_total', { method: 'clora' }) ?? 0) > 0);
    assert.equal(sample(m, 'clora_loras_per_job_sum'), 2);
    assert.ok((sample(m, 'clora_engine_peak_memory_bytes') ?? 0) > 50 * 1024 * 1024);
    assert.ok(sample(m, 'process_cpu_user_seconds_total') !== undefined, "prom-client's default metrics");
    assert.ok(sample(m, 'nodejs_eventloop_lag_seconds') !== undefined);
  });

  it('a failing run is counted by its outcome; watching again changes nothing', async () => {
    ops.watch({ library: app.library, engine: app.engine });
    const failing = ops.instrument(async () => {
      throw new Error('engine fault');
    });
    const job = {
      id: 'j',
      data: { request: { method: 'merge', bindings: [], style: null } },
      owner: { userId: 'u', scope: 's' },
      attempt: 1,
      signal: new AbortController().signal,
      progress: async () => undefined,
    } as unknown as Parameters<typeof failing>[0];
    await assert.rejects(failing(job), /engine fault/);
    const m = (await get(ops.server.port, '/metrics')).text;
    assert.equal(sample(m, 'clora_jobs_total', { method: 'merge', outcome: 'failed' }), 1);
  });
});

describe('the queue as /healthz and /metrics see it', { timeout: 60_000 }, () => {
  it("with Redis: BullMQ's own queue metrics, and the engine left to the workers", async () => {
    const ops = (await startOps({ ops: OPS }))!;
    cleanups.push(() => ops.close());
    ops.watch({ library: { dir: root, list: () => [] }, redisUrl });
    const ok = await health(ops.server.port);
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.equal(ok.body.checks.queue, 'Redis reachable');
    assert.equal(ok.body.checks.engine, 'on the workers');
    const m = (await get(ops.server.port, '/metrics')).text;
    assert.ok(sample(m, 'bullmq_job_count', { queue: 'clora-jobs', state: 'waiting' }) !== undefined, m);
  });

  it('an unreachable Redis or a missing model is a 503 naming the failing check', async () => {
    const ops = (await startOps({ ops: OPS }))!;
    cleanups.push(() => ops.close());
    ops.watch({ library: { dir: root, list: () => [] }, redisUrl: 'redis://127.0.0.1:1' });
    const down = await health(ops.server.port);
    assert.equal(down.status, 503);
    assert.match(down.body.reason, /^queue: /);
    const noModel = (await startOps({ ops: OPS }))!;
    cleanups.push(() => noModel.close());
    noModel.watch({ library: { dir: root, list: () => [] }, engineMissing: 'No model is configured yet.' });
    const missing = await health(noModel.server.port);
    assert.equal(missing.status, 503);
    assert.equal(missing.body.reason, 'engine: No model is configured yet.');
  });
});

describe('LOG_FORMAT=json', () => {
  it('writes one JSON object per line, with secrets still masked', () => {
    const secret = 'xoxb-1234567890-redact-me-please';
    loadConfig({ SLACK_BOT_TOKEN: secret, SLACK_SIGNING_SECRET: 'signing-secret-value' });
    const lines: string[] = [];
    const write = process.stdout.write;
    process.stdout.write = ((chunk: string) => lines.push(chunk) > 0) as typeof process.stdout.write;
    try {
      const log = createLogger('info', 'bot', 'json').child('slack');
      log.info(`token ${secret} in a "quoted"\nmessage`);
    } finally {
      process.stdout.write = write;
    }
    assert.equal(lines.length, 1);
    assert.ok(lines[0].endsWith('\n') && !lines[0].slice(0, -1).includes('\n'));
    const entry = JSON.parse(lines[0]);
    assert.equal(entry.level, 'info');
    assert.equal(entry.scope, 'bot/slack');
    assert.ok(!Number.isNaN(Date.parse(entry.time)));
    assert.doesNotMatch(entry.msg, /redact-me/);
    assert.match(entry.msg, /"quoted"\nmessage$/);
  });
});

/** Starts an entry point with JSON logs; resolves its METRICS_PORT from its log line. */
async function startProcess(script: string, env: Record<string, string>) {
  const proc: ChildProcess = spawn(process.execPath, ['--import', 'tsx', join(repoRoot, script)], {
    cwd: repoRoot,
    env: {
      PATH: process.env.PATH ?? '',
      METRICS_PORT: '0',
      LOG_FORMAT: 'json',
      CACHE_DIR: join(root, 'cache'),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const entries: { level: string; msg: string }[] = [];
  const raw: string[] = [];
  for (const stream of [proc.stdout!, proc.stderr!]) {
    let buffered = '';
    stream.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const parts = buffered.split('\n');
      buffered = parts.pop() ?? '';
      for (const line of parts) {
        raw.push(line);
        try {
          entries.push(JSON.parse(line));
        } catch {
          // Not ours (a library writing to the console): kept in `raw` for the assertion below.
        }
      }
    });
  }
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  cleanups.push(async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    await exited;
  });
  const port = await until(
    `${script}'s health and metrics line (said: ${raw.join(' | ')})`,
    async () => {
      if (proc.exitCode !== null) assert.fail(`${script} exited ${proc.exitCode}: ${raw.join('\n')}`);
      const line = entries.find((e) => e.msg.startsWith('health and metrics: '));
      return line ? Number(/:(\d+)\/healthz/.exec(line.msg)?.[1]) : undefined;
    },
    120_000,
  );
  return { proc, port, entries, raw, exited };
}

describe('every entry point serves METRICS_PORT and stops on SIGTERM', { timeout: 240_000 }, () => {
  it('the playground (no model yet): 503 saying how to set MODEL_PATH, metrics, JSON logs', async () => {
    const bot = await startProcess('bot/main.ts', { PLAYGROUND_PORT: '0', LORA_DIR: join(root, 'pg-loras') });
    const h = await until('the app watched', async () => {
      const r = await health(bot.port);
      return r.body.reason?.startsWith('starting') ? undefined : r;
    });
    assert.equal(h.status, 503);
    assert.match(h.body.reason, /^engine: No model is configured yet\. Set MODEL_PATH/);
    assert.ok(sample((await get(bot.port, '/metrics')).text, 'process_resident_memory_bytes'));
    await until('the playground ready', async () =>
      bot.entries.find((e) => e.msg.startsWith('playground ready')),
    );
    bot.proc.kill('SIGTERM');
    assert.equal(await bot.exited, 0);
    assert.deepEqual(
      bot.raw.filter((l) => l.trim() !== '' && !l.startsWith('{')),
      [],
      'every line is JSON',
    );
    assert.ok(bot.entries.some((e) => /playground: open http/.test(e.msg)));
  });

  it('the Discord-only bot, which has no HTTP server of its own', async () => {
    const token = 'MTEwMDAwMDAwMDAwMDAwMDAwMQ.GhAbCd.ops-test-token_Zq9xR2vL8kP4wY7tN3mB';
    const discord = await DiscordStandIn.start({
      token,
      applicationId: '1100000000000000001',
      guild: { id: '1300000000000000000', name: 'Ops', channelId: '1300000000000000001', roles: [] },
      heartbeatIntervalMs: 300,
    });
    cleanups.push(() => discord.close());
    const bot = await startProcess('bot/main.ts', {
      DISCORD_TOKEN: token,
      DISCORD_APPLICATION_ID: '1100000000000000001',
      DISCORD_API_URL: discord.apiUrl,
      LORA_DIR: join(root, 'discord-loras'),
    });
    await until('the Discord adapter ready', async () =>
      bot.entries.find((e) => e.msg.startsWith('discord ready')),
    );
    const h = await health(bot.port);
    assert.equal(h.status, 503);
    assert.equal(h.body.checks.library, '0 LoRAs scanned');
    assert.equal((await get(bot.port, '/metrics')).status, 200);
    assert.ok(!bot.raw.some((l) => l.includes(token)), 'the token reaches no log line');
    bot.proc.kill('SIGTERM');
    assert.equal(await bot.exited, 0);
  });

  it('the Slack bot (HTTP events)', async () => {
    const botToken = 'xoxb-1111111111-2222222222-opsTestBotTokenValue';
    const slack = await SlackStandIn.start({
      botToken,
      signingSecret: 'ops-signing-secret',
      channels: ['C0OPS'],
    });
    cleanups.push(() => slack.close());
    const bot = await startProcess('bot/main.ts', {
      SLACK_BOT_TOKEN: botToken,
      SLACK_SIGNING_SECRET: 'ops-signing-secret',
      SLACK_API_URL: slack.apiUrl,
      SLACK_PORT: '0',
      LORA_DIR: join(root, 'slack-loras'),
    });
    await until('the Slack adapter ready', async () =>
      bot.entries.find((e) => e.msg.startsWith('slack ready')),
    );
    const h = await health(bot.port);
    assert.equal(h.status, 503);
    assert.equal(h.body.checks.queue, 'in this process');
    assert.equal((await get(bot.port, '/metrics')).status, 200);
    assert.ok(!bot.raw.some((l) => l.includes(botToken)), 'the token reaches no log line');
    bot.proc.kill('SIGTERM');
    assert.equal(await bot.exited, 0);
  });

  it('npm run worker: 200 once the model is loaded, with the queue metrics; SIGTERM exits 0', async () => {
    const worker = await startProcess('bot/worker.ts', {
      REDIS_URL: redisUrl,
      MODEL_PATH: join(fx, 'model'),
      LORA_DIR: fixtureLoraFolder(join(root, 'worker')),
      CACHE_DIR: join(root, 'cache'),
    });
    const ready = await until(
      'the worker healthy',
      async () => {
        const r = await health(worker.port);
        return r.status === 200 ? r : undefined;
      },
      180_000,
    );
    assert.deepEqual(ready.body.checks, {
      engine: 'model loaded',
      queue: 'Redis reachable',
      library: '2 LoRAs scanned',
    });
    const m = (await get(worker.port, '/metrics')).text;
    assert.ok(sample(m, 'bullmq_job_count', { queue: 'clora-jobs' }) !== undefined);
    assert.ok(sample(m, 'clora_engine_peak_memory_bytes'));
    worker.proc.kill('SIGTERM');
    assert.equal(await worker.exited, 0);
  });
});
