// `npm start` with settings an operator gets wrong: each stops start-up (or is reported) with
// one line that names what to fix and no stack trace. The bot runs as its own process, against
// the Discord and Slack stand-ins where a platform is involved.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { repoRoot } from '../fixtures.ts';
import { DiscordStandIn } from '../standins/discord.ts';
import { SlackStandIn } from '../standins/slack.ts';

const DISCORD_TOKEN = 'MTEwMDAwMDAwMDAwMDAwMDAwMQ.GaBcDe.abcdefghijklmnopqrstuvwxyz0123456789ab';
const DISCORD_APP = '1100000000000000002';
const SLACK_BOT_TOKEN = 'xoxb-1111111111-2222222222-standinBotTokenValue';
const SLACK_APP_TOKEN = 'xapp-1-A0STANDIN-3333333333-standinAppTokenValue';
const SIGNING_SECRET = 'standin-signing-secret-5f0c8e1a9b';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

const work = mkdtempSync(join(tmpdir(), 'clora-startup-'));
const loraDir = join(work, 'loras');

/** Runs `npm start`'s script with exactly this environment; stops it once `until` is printed. */
function start(env: Record<string, string>, args: string[] = [], until?: RegExp): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      join(repoRoot, 'node_modules', '.bin', 'tsx'),
      [join(repoRoot, 'bot', 'main.ts'), ...args],
      {
        cwd: work,
        env: { PATH: process.env.PATH ?? '', HOME: work, LORA_DIR: loraDir, PLAYGROUND_PORT: '0', ...env },
      },
    );
    let stdout = '';
    let stderr = '';
    const check = () => {
      if (until?.test(stdout + stderr)) child.kill('SIGTERM');
    };
    child.stdout.on('data', (d) => {
      stdout += d;
      check();
    });
    child.stderr.on('data', (d) => {
      stderr += d;
      check();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The one line start-up failed with (after any log lines); fails the test on a stack trace. */
function oneLine(run: Run): string {
  assert.equal(run.code, 1, `exit code; stderr: ${run.stderr}`);
  assert.doesNotMatch(run.stderr, /^\s+at /m, 'no stack trace');
  const lines = run.stderr.trimEnd().split('\n');
  const unlogged = lines.filter((l) => !/^\d{4}-\d\d-\d\dT[\d:.]+Z /.test(l));
  assert.equal(unlogged.length, 1, run.stderr);
  assert.match(lines.at(-1) ?? '', /^clora-bot could not start: /);
  return lines.at(-1) ?? '';
}

describe('npm start with wrong settings', { timeout: 240_000 }, () => {
  let discord: DiscordStandIn;
  let slack: SlackStandIn;
  let busy: Server;
  let busyPort: number;
  let closedPort: number;

  before(async () => {
    discord = await DiscordStandIn.start({
      token: DISCORD_TOKEN,
      applicationId: DISCORD_APP,
      guild: { id: '1100000000000000003', name: 'Guild', channelId: '1100000000000000004', roles: [] },
    });
    slack = await SlackStandIn.start({
      botToken: SLACK_BOT_TOKEN,
      appToken: SLACK_APP_TOKEN,
      signingSecret: SIGNING_SECRET,
      channels: [],
    });
    busy = createServer();
    await new Promise<void>((r) => busy.listen(0, r));
    busyPort = (busy.address() as { port: number }).port;
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    closedPort = (closed.address() as { port: number }).port;
    await new Promise((r) => closed.close(r));
  });

  after(async () => {
    await discord?.close();
    await slack?.close();
    busy?.close();
    rmSync(work, { recursive: true, force: true });
  });

  test('--help prints the usage with every key and its default, and starts nothing', async () => {
    const run = await start({}, ['--help']);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^usage: npm start\n/);
    assert.match(run.stdout, /MAX_SIZE +largest image width .*\(default: 1024\)/);
    assert.doesNotMatch(run.stdout + run.stderr, /ready|playground: open/, 'nothing was started');
  });

  test('LORA_DIR pointing at a file', async () => {
    const file = join(work, 'not-a-folder.safetensors');
    writeFileSync(file, 'x');
    assert.match(
      oneLine(await start({ LORA_DIR: file })),
      /LORA_DIR=.*not-a-folder\.safetensors is a file, not a folder/,
    );
  });

  test('a busy port: the playground’s and Slack’s', async () => {
    assert.match(
      oneLine(await start({ PLAYGROUND_PORT: String(busyPort) })),
      /the port is in use; set PLAYGROUND_PORT/,
    );
    const slackBusy = await start({
      SLACK_BOT_TOKEN,
      SLACK_SIGNING_SECRET: SIGNING_SECRET,
      SLACK_API_URL: slack.apiUrl,
      SLACK_PORT: String(busyPort),
    });
    assert.match(oneLine(slackBusy), new RegExp(`port ${busyPort} \\(it is in use\\); set SLACK_PORT`));
  });

  test('a refused token is named by its key', async () => {
    const base = { SLACK_SIGNING_SECRET: SIGNING_SECRET, SLACK_API_URL: slack.apiUrl };
    assert.match(
      oneLine(await start({ ...base, SLACK_BOT_TOKEN: 'xoxb-1111111111-2222222222-someOtherToken' })),
      /SLACK_BOT_TOKEN was refused by Slack \(invalid_auth\)/,
    );
    assert.match(
      oneLine(
        await start({
          SLACK_BOT_TOKEN,
          SLACK_APP_TOKEN: 'xapp-1-A0STANDIN-3333333333-someOtherToken',
          SLACK_API_URL: slack.apiUrl,
        }),
      ),
      /SLACK_APP_TOKEN was refused by Slack \(invalid_auth\)/,
    );
    assert.match(
      oneLine(
        await start({
          DISCORD_TOKEN: DISCORD_TOKEN.replace('GaBcDe', 'XyZxYz'),
          DISCORD_APPLICATION_ID: DISCORD_APP,
          DISCORD_API_URL: discord.apiUrl,
        }),
      ),
      /DISCORD_TOKEN was refused by Discord/,
    );
  });

  test('no network is reported as such, not as a refusal', async () => {
    const noDiscord = oneLine(
      await start({
        DISCORD_TOKEN,
        DISCORD_APPLICATION_ID: DISCORD_APP,
        DISCORD_API_URL: `http://127.0.0.1:${closedPort}/api`,
      }),
    );
    assert.match(
      noDiscord,
      new RegExp(`cannot reach Discord at 127\\.0\\.0\\.1:${closedPort} \\(ECONNREFUSED\\)`),
    );
    assert.doesNotMatch(noDiscord, /refused to connect/);
    const noSlack = oneLine(
      await start({
        SLACK_BOT_TOKEN,
        SLACK_SIGNING_SECRET: SIGNING_SECRET,
        SLACK_API_URL: `http://127.0.0.1:${closedPort}/api/`,
      }),
    );
    assert.match(
      noSlack,
      new RegExp(`cannot reach Slack at 127\\.0\\.0\\.1:${closedPort} \\(ECONNREFUSED\\)`),
    );
  });

  test('a MODEL_PATH that does not exist is one warning line; the playground still opens', async () => {
    const run = await start({ MODEL_PATH: join(work, 'no-such-model') }, [], /playground ready/);
    assert.match(run.stdout, /playground ready/);
    assert.doesNotMatch(run.stdout + run.stderr, /^\s+at /m, 'no stack trace');
    const problems = run.stderr.split('\n').filter((l) => l.includes('no-such-model'));
    assert.equal(problems.length, 1, run.stderr);
    assert.match(problems[0], /warn .*MODEL_PATH cannot be used: .*no-such-model: does not exist/);
  });
});
