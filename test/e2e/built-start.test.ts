// The production start: `npm start` builds dist/ when it is missing or stale and runs node on the
// built JavaScript, its engine and LoRA-check threads included; `npm run worker` and `npm run
// compose` run from the same build (the command line's entry-point check holds there too).
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { PlaygroundStatus } from '../../bot/playground/index.ts';
import { fixtureDir, fixtureLoraFolder, repoRoot } from '../fixtures.ts';

const MIN = 60_000;
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const work = mkdtempSync(join(tmpdir(), 'clora-built-start-'));
after(() => rmSync(work, { recursive: true, force: true }));

/** The first stdout line matching `pattern`, or the process's output so far when it ends first. */
function waitForLine(child: ChildProcess, pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(
      () => reject(new Error(`no ${pattern} within ${timeoutMs} ms:\n${seen}`)),
      timeoutMs,
    );
    const take = (chunk: Buffer) => {
      seen += chunk.toString();
      const hit = pattern.exec(seen);
      if (hit) {
        clearTimeout(timer);
        resolve(hit);
      }
    };
    child.stdout!.on('data', take);
    child.stderr!.on('data', (chunk: Buffer) => {
      seen += chunk.toString();
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`exited with ${code} before ${pattern}:\n${seen}`));
    });
  });
}

/** The command lines of the processes in a process group. */
function processesInGroup(pgid: number): string[] {
  const ps = spawnSync('ps', ['-eo', 'pgid=,args='], { encoding: 'utf8' });
  return ps.stdout
    .split('\n')
    .map((line) => /^\s*(\d+)\s+(.*)$/.exec(line))
    .filter((m) => m && Number(m[1]) === pgid)
    .map((m) => m![2]);
}

async function statusOnceLoaded(base: string, timeoutMs: number): Promise<PlaygroundStatus> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const status = (await (await fetch(`${base}/api/status`)).json()) as PlaygroundStatus;
    if (status.model.engine !== 'loading' && status.loras.total === status.loras.usable) return status;
    if (Date.now() > deadline) throw new Error(`still loading: ${JSON.stringify(status)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('the built start', { timeout: 5 * MIN }, () => {
  let bot: ChildProcess | undefined;
  after(async () => {
    if (!bot || bot.exitCode !== null) return;
    const exited = new Promise((r) => bot!.once('exit', r));
    process.kill(-bot.pid!, 'SIGTERM'); // npm, its shell and node: the group started below
    await exited;
  });

  it('npm start builds dist/ and serves the playground from it, the engine and LoRA checks on built threads', async () => {
    bot = spawn(npm, ['start'], {
      cwd: repoRoot,
      detached: true,
      env: {
        ...process.env,
        MODEL_PATH: join(fixtureDir(), 'model'),
        LORA_DIR: fixtureLoraFolder(work),
        CACHE_DIR: join(work, 'cache'),
        PLAYGROUND_PORT: '0',
        LOG_LEVEL: 'info',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const [, base] = await waitForLine(bot, /playground ready: (http:\/\/\S+)/, 3 * MIN);
    const group = processesInGroup(bot.pid!);
    assert.ok(
      group.some((args) => /node\S*( --\S+)* dist\/bot\/main\.js/.test(args)),
      `no node dist/bot/main.js among:\n${group.join('\n')}`,
    );
    assert.ok(!group.some((args) => /tsx/.test(args)), `tsx in:\n${group.join('\n')}`);

    const page = await fetch(`${base}/`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<script src="\/app.js"/);
    const status = await statusOnceLoaded(base, 2 * MIN);
    // A built thread that tried its .ts source (or tsx's launcher, which dist/ lacks) would fail here.
    assert.equal(status.model.engine, 'ready', JSON.stringify(status));
    assert.deepEqual(status.loras, { total: 2, usable: 2 });
  });

  it('npm run worker runs the built worker, its engine and LoRA checks on built threads', async () => {
    const worker = spawn(npm, ['run', 'worker'], {
      cwd: repoRoot,
      detached: true,
      env: {
        ...process.env,
        REDIS_URL: process.env.CLORA_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379',
        MODEL_PATH: join(fixtureDir(), 'model'),
        LORA_DIR: fixtureLoraFolder(join(work, 'worker')),
        CACHE_DIR: join(work, 'cache'),
        LOG_LEVEL: 'info',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      await waitForLine(worker, /engine ready in .* taking jobs from Redis/, 3 * MIN);
      const group = processesInGroup(worker.pid!);
      assert.ok(
        group.some((args) => /node\S*( --\S+)* dist\/bot\/worker\.js/.test(args)),
        `no node dist/bot/worker.js among:\n${group.join('\n')}`,
      );
    } finally {
      const exited = new Promise((r) => worker.once('exit', r));
      process.kill(-worker.pid!, 'SIGTERM');
      await exited;
    }
  });

  it('npm run compose runs the built command line', () => {
    const run = spawnSync(npm, ['run', '-s', 'compose', '--', '--help'], {
      cwd: repoRoot,
      encoding: 'utf8',
      timeout: 2 * MIN,
    });
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /^usage: npm run compose/);
  });
});
