// The playground end to end on the tiny model: its HTTP API and event stream (always), then
// the page itself in headless Chromium (skipped, saying what is missing, where Chromium is
// not installed): /compose with LoRA-name completion, queued → step x/y → the image, masks
// shown and hidden, rerun into the same bytes, a new seed, cancel, /loras, a typo's
// suggestion; without a model, the MODEL_PATH banner. Also the demo model's files.

import assert from 'node:assert/strict';
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { type Browser, chromium, type Locator, type Page } from 'playwright-core';
import sharp from 'sharp';
import { type App, startApp } from '../../bot/app.ts';
import { createLogger } from '../../bot/log.ts';
import {
  hasRandomWeights,
  type Playground,
  type PlaygroundStatus,
  startPlayground,
} from '../../bot/playground/index.ts';
import type { WireReply } from '../../bot/playground/wire.ts';
import { readRecipe } from '../../bot/render/recipe.ts';
import { DEMO_COMMAND, DEMO_LORAS, installDemo } from '../../bot/tools/demo-model.ts';
import { loadConfig } from '../../config/index.ts';
import { openCheckpoint } from '../../engine/weights/checkpoint.ts';
import { fixtureDir, fixtureLoraFolder } from '../fixtures.ts';

const MIN = 60_000;
const fixture = fixtureDir();
const work = mkdtempSync(join(tmpdir(), 'clora-playground-'));
const loraDir = fixtureLoraFolder(work);
const FAST = '--steps 3 --size 128x128';
const COMPOSE = `/compose cat:<tabby> penguin:<plush> in a house ${FAST}`;
const PNG = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

after(() => rmSync(work, { recursive: true, force: true }));

async function startWith(env: Record<string, string>): Promise<{ app: App; playground: Playground }> {
  const config = loadConfig({ LORA_DIR: loraDir, PLAYGROUND_PORT: '0', MAX_SIZE: '128', ...env });
  const app = await startApp(config, { log: createLogger('silent') });
  await app.library.settled();
  const playground = await startPlayground(app, { heartbeatMs: 300, progressIntervalMs: 100 });
  return { app, playground };
}

// ---------------------------------------------------------------- HTTP helpers

interface Outcome {
  reply: WireReply;
  jobId?: string;
  replace?: boolean;
  prefill?: string;
}

async function post(base: string, path: string, body: Record<string, unknown>): Promise<Outcome> {
  const res = await fetch(base + path, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  assert.equal(res.status, 200, `${path} answered ${res.status}: ${await res.clone().text()}`);
  return (await res.json()) as Outcome;
}

/** A raw request, for headers fetch will not let us set (Host) and paths it would normalise. */
function raw(
  base: string,
  options: { method?: string; path: string; headers?: Record<string, string>; body?: string },
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: url.hostname,
        port: url.port,
        method: options.method ?? 'GET',
        path: options.path,
        headers: options.headers,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          body += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

interface StreamEvent {
  event: string;
  data: unknown;
}

/** One tab's Server-Sent Events stream, parsed as it arrives. */
class EventStream {
  readonly events: StreamEvent[] = [];
  heartbeats = 0;
  private readonly abort = new AbortController();
  private waiters: (() => void)[] = [];
  readonly opened: Promise<void>;

  constructor(
    base: string,
    readonly tab: string,
  ) {
    this.opened = this.read(`${base}/api/events?tab=${tab}`);
  }

  private async read(url: string): Promise<void> {
    const res = await fetch(url, { signal: this.abort.signal });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    void (async () => {
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) return;
          buffer += decoder.decode(value, { stream: true });
          for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
            this.take(buffer.slice(0, end));
            buffer = buffer.slice(end + 2);
          }
        }
      } catch {
        // aborted by close()
      }
    })();
  }

  private take(block: string): void {
    if (block.startsWith(':')) this.heartbeats++;
    const event = /^event: (.*)$/m.exec(block)?.[1];
    const data = /^data: (.*)$/m.exec(block)?.[1];
    if (event && data) this.events.push({ event, data: JSON.parse(data) });
    for (const wake of this.waiters.splice(0)) wake();
  }

  /** Resolves with the first event (from `from` on) that `test` accepts. */
  async waitFor<T>(
    test: (e: StreamEvent) => T | undefined,
    what: string,
    timeoutMs = MIN,
    from = 0,
  ): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (let seen = from; ; ) {
      for (; seen < this.events.length; seen++) {
        const hit = test(this.events[seen]);
        if (hit !== undefined && hit !== false) return hit;
      }
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(
          `timed out waiting for ${what}; saw ${JSON.stringify(this.events.map((e) => e.event))}`,
        );
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  jobUpdates(jobId: string): WireReply[] {
    return this.events
      .filter((e) => e.event === 'job' && (e.data as { jobId: string }).jobId === jobId)
      .map((e) => (e.data as { reply: WireReply }).reply);
  }

  /** The job's final reply. */
  final(jobId: string, timeoutMs = MIN): Promise<WireReply> {
    return this.waitFor(
      (e) => {
        const d = e.data as { jobId?: string; final?: boolean; reply: WireReply };
        return e.event === 'job' && d.jobId === jobId && d.final ? d.reply : undefined;
      },
      `the end of job ${jobId}`,
      timeoutMs,
    );
  }

  close(): void {
    this.abort.abort();
  }
}

const seedOf = (r: WireReply) =>
  r.kind === 'message' ? r.card?.fields.find((f) => f.name === 'Seed')?.value : undefined;
const imageOf = (r: WireReply, kind = 'image') =>
  r.kind === 'message' ? r.images.find((i) => i.kind === kind) : undefined;
const buttons = (r: WireReply) => r.rows.flatMap((row) => (row.kind === 'buttons' ? row.buttons : []));

async function bytesAt(base: string, url: string): Promise<{ type: string; bytes: Buffer }> {
  const res = await fetch(base + url);
  assert.equal(res.status, 200, `${url} answered ${res.status}`);
  return { type: res.headers.get('content-type') ?? '', bytes: Buffer.from(await res.arrayBuffer()) };
}

async function until(test: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!test()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

// ---------------------------------------------------------------- Chromium

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Debian's `chromium` (or CHROMIUM_PATH) on the PATH, or why there is none. */
function findChromium(): { path: string } | { missing: string } {
  if (process.env.CHROMIUM_PATH) return { path: process.env.CHROMIUM_PATH };
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    for (const name of ['chromium', 'chromium-browser']) {
      try {
        accessSync(join(dir, name), constants.X_OK);
        return { path: join(dir, name) };
      } catch {
        // not here
      }
    }
  }
  return {
    missing:
      'no Chromium on the PATH (install Debian\'s "chromium" with `apt-get install -y chromium`, or set CHROMIUM_PATH)',
  };
}

const found = findChromium();
let launchProblem: string | undefined = 'path' in found ? undefined : found.missing;

async function launchBrowser(): Promise<Browser | undefined> {
  if (!('path' in found)) return undefined;
  try {
    return await chromium.launch({ executablePath: found.path, args: CHROMIUM_ARGS });
  } catch (e) {
    launchProblem = `Chromium at ${found.path} did not start: ${(e as Error).message.split('\n')[0]}`;
    return undefined;
  }
}

function skipWithoutBrowser(t: TestContext, browser: Browser | undefined): browser is undefined {
  if (browser) return false;
  t.skip(`browser test skipped: ${launchProblem}; the HTTP-level tests cover the same flow`);
  return true;
}

const text = async (locator: Locator) => (await locator.textContent()) ?? '';

/** The messages of the page that show a job, in order. */
const jobMessages = (page: Page) => page.locator('article[data-job]');
const fieldValue = (message: Locator, name: string) =>
  message
    .locator('.field', { has: message.page().locator('.field-name', { hasText: new RegExp(`^${name}$`) }) })
    .locator('.field-value');
/** What the test reads of an <img> in the page (the DOM's types are not in this project's lib). */
type PageImage = { naturalWidth: number; complete: boolean; getAttribute(name: string): string | null };

// Records every progress line a job message shows, however briefly, and whether a preview appeared.
const RECORD_PROGRESS = `(() => {
  const seen = (window.seenLines = []);
  new MutationObserver(() => {
    for (const line of document.querySelectorAll('[data-job] .progress-line')) {
      if (seen.at(-1) !== line.textContent) seen.push(line.textContent);
    }
    if (document.querySelector('[data-job] .preview') && !seen.includes('(preview)')) seen.push('(preview)');
  }).observe(document.getElementById('log'), { subtree: true, childList: true, characterData: true });
})()`;

// ---------------------------------------------------------------- with the tiny model

describe('playground on the tiny model', { timeout: 4 * MIN }, () => {
  let app: App;
  let playground: Playground;
  let base: string;

  before(async () => {
    ({ app, playground } = await startWith({
      MODEL_PATH: join(fixture, 'model'),
      CACHE_DIR: join(work, 'cache'),
    }));
    await app.engine!.ready();
    base = playground.address;
  });
  after(async () => {
    await playground?.stop();
    await app?.close();
  });

  describe('HTTP API and event stream', () => {
    let stream: EventStream;
    let first: { jobId: string; final: WireReply };

    before(async () => {
      stream = new EventStream(base, 'http-tab-0001');
      await stream.opened;
    });
    after(() => stream.close());

    it('serves the page with a strict content policy and reports the model', async () => {
      const page = await fetch(`${base}/`);
      assert.equal(page.status, 200);
      assert.match(page.headers.get('content-type')!, /^text\/html/);
      assert.match(page.headers.get('content-security-policy')!, /script-src 'self'/);
      assert.match(await page.text(), /<script src="\/app.js"/);
      const status = (await (await fetch(`${base}/api/status`)).json()) as PlaygroundStatus;
      assert.equal(status.model.ready, true);
      assert.equal(status.model.engine, 'ready');
      assert.equal(status.model.random, false);
      assert.deepEqual(status.loras, { total: 2, usable: 2 });
      const streamed = await stream.waitFor((e) => (e.event === 'status' ? e.data : undefined), 'status');
      assert.deepEqual(streamed, status);
    });

    it('completes commands and LoRA names as whole inputs, at most 25', async () => {
      const complete = async (text: string) =>
        (
          (await (await fetch(`${base}/api/complete?text=${encodeURIComponent(text)}`)).json()) as {
            completions: { text: string; label: string; detail?: string }[];
          }
        ).completions;
      assert.deepEqual(
        (await complete('/compose cat:<ta')).map((c) => c.text),
        ['/compose cat:<tabby> '],
      );
      const plush = await complete('/compose cat:<tabby> penguin:pl');
      assert.equal(plush[0].text, '/compose cat:<tabby> penguin:<plush> ');
      assert.equal(plush[0].detail, 'triggers: ohwx');
      assert.deepEqual(
        (await complete('a "red panda":<')).map((c) => c.text),
        ['a "red panda":<plush> ', 'a "red panda":<tabby> '],
      );
      assert.deepEqual(
        (await complete('/compose cat:<tabyb')).map((c) => c.label),
        ['tabby'],
      );
      assert.equal((await complete('/co'))[0].text, '/compose ');
      assert.deepEqual(
        (await complete('/lora t')).map((c) => c.text),
        ['/lora tabby'],
      );
      assert.deepEqual(await complete('/queue cat:<ta'), []);
      assert.deepEqual(await complete('in a house'), []);
    });

    it('queues /compose, streams position and step x/y with a preview, then the image', async () => {
      const outcome = await post(base, '/api/command', { text: COMPOSE, tab: stream.tab });
      assert.ok(outcome.jobId, JSON.stringify(outcome.reply));
      assert.equal(outcome.reply.kind, 'progress');
      assert.ok(outcome.reply.kind === 'progress' && ['queued', 'running'].includes(outcome.reply.state));
      assert.deepEqual(
        buttons(outcome.reply).map((b) => [b.label, b.action]),
        [['Cancel', 'cancel']],
      );
      const final = await stream.final(outcome.jobId);
      first = { jobId: outcome.jobId, final };
      const updates = stream.jobUpdates(outcome.jobId);
      const lines = updates.flatMap((u) => (u.kind === 'progress' ? [u.line] : []));
      assert.ok(
        lines.some((l) => /^Step \d\/3/.test(l)),
        `no step x/y among ${JSON.stringify(lines)}`,
      );
      assert.ok(
        updates.some((u) => u.kind === 'progress' && u.preview?.url.startsWith('data:image/webp;base64,')),
        'no preview while running',
      );
      // Every update is newer than the one before: the page never shows an older state.
      const seqs = [outcome.reply.seq, ...updates.map((u) => u.seq)];
      assert.deepEqual(
        [...seqs].sort((a, b) => a - b),
        seqs,
      );

      assert.equal(final.kind, 'message');
      assert.equal(final.jobId, outcome.jobId);
      const image = imageOf(final)!;
      assert.equal(image.url, `/api/jobs/${outcome.jobId}/blob/image`);
      assert.match(image.alt, /a cat and a penguin in a house \(seed \d+\)/);
      const png = await bytesAt(base, image.url);
      assert.equal(png.type, 'image/png');
      assert.deepEqual([...png.bytes.subarray(0, 8)], PNG);
      assert.deepEqual(
        buttons(final).map((b) => [b.label, b.action, Boolean(b.disabled)]),
        [
          ['Rerun', 'rerun', false],
          ['New seed', 'seed', false],
          ['Show masks', 'masks', false],
          ['Compare with merge', 'merge', false],
          ['Tweak', 'tweak', false],
        ],
      );
      await until(() => playground.activity().jobs === 0, 'the follow to end');
    });

    it('shows the masks of a finished job from the job record', async () => {
      const masks = await post(base, '/api/action', { id: `masks:${first.jobId}`, tab: stream.tab });
      assert.equal(masks.jobId, undefined);
      assert.equal(masks.reply.kind, 'message');
      assert.deepEqual(masks.reply.kind === 'message' && masks.reply.images.map((i) => i.url), [
        `/api/jobs/${first.jobId}/blob/masks`,
        `/api/jobs/${first.jobId}/blob/maps`,
      ]);
      const picture = await bytesAt(base, `/api/jobs/${first.jobId}/blob/masks`);
      assert.match(picture.type, /^image\/(png|webp)$/);
      assert.ok(picture.bytes.length > 100);
    });

    it('writes the recipe into the PNG and reads the command back from a posted picture', async () => {
      const png = await bytesAt(base, `/api/jobs/${first.jobId}/blob/image`);
      const { comments } = await sharp(png.bytes).metadata();
      const parameters = comments?.find((c) => c.keyword === 'parameters')?.text ?? '';
      assert.match(parameters, /^a cat and a penguin in a house <lora:tabby:1> <lora:plush:1>\n/);
      assert.match(parameters, /Steps: 3, Sampler: DDIM, CFG scale: 7\.5, Seed: \d+, Size: 128x128, /);
      assert.match(
        parameters,
        /Lora hashes: "tabby: [0-9a-f]{10}, plush: [0-9a-f]{10}", Version: clora-bot /,
      );
      const recipe = readRecipe(png.bytes);
      assert.equal(recipe.kind, 'recipe');
      const command = recipe.kind === 'recipe' ? recipe.recipe.command : '';
      assert.match(
        command,
        /^\/compose cat:<tabby> penguin:<plush> in a house --seed \d+ --steps 3 --size 128x128 /,
      );

      const remix = await post(base, '/api/remix', { image: png.bytes.toString('base64'), tab: stream.tab });
      assert.equal(remix.jobId, undefined, 'remix runs nothing');
      assert.equal(remix.prefill, command.replace('/compose ', ''));
      const again = await post(base, '/api/command', { text: remix.prefill!, tab: stream.tab });
      assert.ok(again.jobId);
      const final = await stream.final(again.jobId);
      const same = await bytesAt(base, imageOf(final)!.url);
      assert.ok(same.bytes.equals(png.bytes), 'the remixed command makes the same picture, recipe and all');

      const foreign = await post(base, '/api/remix', {
        image: Buffer.from('GIF89a').toString('base64'),
        tab: stream.tab,
      });
      assert.equal(foreign.prefill, undefined);
      assert.match(foreign.reply.kind === 'message' ? (foreign.reply.text ?? '') : '', /not a PNG/);
    });

    it('reruns into identical bytes, draws another seed and compares with merging', async () => {
      const rerun = await post(base, '/api/action', { id: `rerun:${first.jobId}`, tab: stream.tab });
      assert.ok(rerun.jobId && rerun.jobId !== first.jobId);
      const again = await stream.final(rerun.jobId);
      assert.equal(seedOf(again), seedOf(first.final));
      const [a, b] = await Promise.all([
        bytesAt(base, imageOf(first.final)!.url),
        bytesAt(base, imageOf(again)!.url),
      ]);
      assert.ok(a.bytes.equals(b.bytes), 'the rerun changed the picture');

      const fresh = await post(base, '/api/action', { id: `seed:${first.jobId}`, tab: stream.tab });
      const other = await stream.final(fresh.jobId!);
      assert.notEqual(seedOf(other), seedOf(first.final));
      assert.ok(!(await bytesAt(base, imageOf(other)!.url)).bytes.equals(a.bytes));

      const merge = await post(base, '/api/action', { id: `merge:${first.jobId}`, tab: stream.tab });
      const merged = await stream.final(merge.jobId!);
      assert.equal(seedOf(merged), seedOf(first.final));
      assert.match(merged.kind === 'message' ? merged.card!.footer! : '', /^merge/);
      assert.equal(buttons(merged).find((b) => b.action === 'merge')?.disabled, true);
      assert.ok(
        merged.kind === 'message' && merged.images.some((i) => i.filename.startsWith('compare-')),
        'no merge-beside-CLoRA sheet',
      );
    });

    it('cancels a long job while it runs', async () => {
      const long = await post(base, '/api/command', {
        text: '/compose cat:<tabby> penguin:<plush> in a house --steps 40 --size 128x128',
        tab: stream.tab,
      });
      const jobId = long.jobId!;
      await stream.waitFor(
        (e) =>
          e.event === 'job' &&
          (e.data as { jobId: string }).jobId === jobId &&
          (e.data as { reply: WireReply }).reply.kind === 'progress' &&
          /^Step/.test((e.data as { reply: { line: string } }).reply.line),
        'the long job to run',
      );
      const cancel = await post(base, '/api/action', { id: `cancel:${jobId}`, tab: stream.tab });
      assert.equal(cancel.replace, true);
      assert.ok(cancel.reply.kind === 'progress' && cancel.reply.state === 'cancelled');
      assert.equal(cancel.reply.kind === 'progress' && cancel.reply.line, 'Cancelled by you');
      const end = await stream.final(jobId);
      assert.ok(end.kind === 'progress' && end.state === 'cancelled');
      assert.equal((await app.queue.get(jobId))?.state, 'cancelled');
      assert.deepEqual(buttons(end), []);
    });

    it('lists the library, explains commands and answers a typo without starting a job', async () => {
      const loras = await post(base, '/api/command', { text: '/loras', tab: stream.tab });
      assert.ok(loras.reply.kind === 'message' && loras.reply.ephemeral);
      assert.deepEqual(loras.reply.kind === 'message' && loras.reply.card?.fields.map((f) => f.name), [
        'plush',
        'tabby',
      ]);
      const add = await post(base, '/api/command', { text: '/lora add', tab: stream.tab });
      assert.match(JSON.stringify(add.reply), /copying its \.safetensors file/);
      const help = await post(base, '/api/command', { text: '/help', tab: stream.tab });
      assert.match(JSON.stringify(help.reply), /\/loras \[search\]/);
      const unknown = await post(base, '/api/command', { text: '/compse cat:<tabby>', tab: stream.tab });
      assert.match(JSON.stringify(unknown.reply), /did you mean '\/compose'/);

      const before = await post(base, '/api/command', { text: '/queue', tab: stream.tab });
      for (const text of ['/compose cat:<tabbby> in a house', 'cat:<tabbby> in a house']) {
        const typo = await post(base, '/api/command', { text, tab: stream.tab });
        assert.equal(typo.jobId, undefined);
        assert.ok(typo.reply.kind === 'message' && typo.reply.ephemeral);
        assert.match(typo.reply.kind === 'message' ? typo.reply.text! : '', /did you mean 'tabby'/);
      }
      const afterwards = await post(base, '/api/command', { text: '/queue', tab: stream.tab });
      assert.deepEqual(
        afterwards.reply.kind === 'message' && afterwards.reply.text,
        before.reply.kind === 'message' && before.reply.text,
      );
    });

    it('refuses other hosts and sites, oversized bodies and paths it does not serve', async () => {
      const port = new URL(base).port;
      const rebound = await raw(base, { path: '/api/status', headers: { Host: `evil.example:${port}` } });
      assert.equal(rebound.status, 421);
      const wrongPort = await raw(base, { path: '/api/status', headers: { Host: `127.0.0.1:1` } });
      assert.equal(wrongPort.status, 421);
      assert.equal(
        (await raw(base, { path: '/api/status', headers: { Host: `localhost:${port}` } })).status,
        200,
      );
      const json = { 'Content-Type': 'application/json' };
      const body = JSON.stringify({ text: '/help', tab: 'abcdefgh' });
      const foreign = await raw(base, {
        method: 'POST',
        path: '/api/command',
        headers: { ...json, Origin: 'http://evil.example' },
        body,
      });
      assert.equal(foreign.status, 403);
      const crossSite = await raw(base, {
        path: `/api/jobs/${first.jobId}/blob/image`,
        headers: { 'Sec-Fetch-Site': 'cross-site', 'Sec-Fetch-Mode': 'no-cors' },
      });
      assert.equal(crossSite.status, 403);
      const link = await raw(base, {
        path: '/',
        headers: { 'Sec-Fetch-Site': 'cross-site', 'Sec-Fetch-Mode': 'navigate' },
      });
      assert.equal(link.status, 200);
      const own = await raw(base, {
        method: 'POST',
        path: '/api/command',
        headers: { ...json, Origin: base },
        body,
      });
      assert.equal(own.status, 200);
      const form = await raw(base, {
        method: 'POST',
        path: '/api/command',
        headers: { 'Content-Type': 'text/plain' },
        body,
      });
      assert.equal(form.status, 415);
      const huge = await raw(base, {
        method: 'POST',
        path: '/api/command',
        headers: json,
        body: JSON.stringify({ text: 'x'.repeat(64 * 1024), tab: 'abcdefgh' }),
      });
      assert.equal(huge.status, 413);
      const streamed = await raw(base, {
        method: 'POST',
        path: '/api/command',
        headers: { ...json, 'Transfer-Encoding': 'chunked' },
        body: JSON.stringify({ text: 'x'.repeat(64 * 1024), tab: 'abcdefgh' }),
      });
      assert.equal(streamed.status, 413);
      for (const path of [
        '/../package.json',
        '/%2e%2e/package.json',
        `/api/jobs/${first.jobId}/blob/..%2F..%2Fpackage.json`,
        `/api/jobs/${first.jobId}/blob/data`,
        '/api/jobs/no-such-job/blob/image',
        '/public/app.js',
      ]) {
        const res = await raw(base, { path });
        assert.equal(res.status, 404, `${path} answered ${res.status}`);
      }
      const badTab = await raw(base, {
        method: 'POST',
        path: '/api/command',
        headers: json,
        body: '{"text":"/help","tab":"../x"}',
      });
      assert.equal(badTab.status, 400);
    });

    it('keeps the stream alive with heartbeats and forgets a tab that goes away', async () => {
      await until(() => stream.heartbeats >= 1, 'a heartbeat', 3000);
      const other = new EventStream(base, 'http-tab-0002');
      await other.opened;
      await until(() => playground.activity().streams === 2, 'the second stream');
      other.close();
      await until(() => playground.activity().streams === 1, 'the second stream to close');
    });
  });

  describe('the page in headless Chromium', () => {
    let browser: Browser | undefined;
    let page: Page;
    const pageErrors: string[] = [];

    before(async () => {
      browser = await launchBrowser();
      if (!browser) return;
      page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
      page.on('pageerror', (e) => pageErrors.push(e.message));
      await page.goto(`${base}/`);
      await page.locator('#model-status[data-state="ready"]').waitFor();
    });
    after(async () => {
      await browser?.close();
      assert.deepEqual(pageErrors, [], 'the page threw');
    });

    it('composes from the input box with LoRA completion: queued, step x/y, then the image', async (t) => {
      if (skipWithoutBrowser(t, browser)) return;
      assert.match(await text(page.locator('#lora-count')), /2 LoRAs/);
      assert.equal(await page.locator('#banner').isHidden(), true);
      await page.evaluate(RECORD_PROGRESS);
      const input = page.locator('#input');
      await input.click();
      await input.pressSequentially('/compose cat:<tab');
      await page.locator('#suggestions .option', { hasText: 'tabby' }).waitFor();
      await input.press('Tab');
      assert.equal(await input.inputValue(), '/compose cat:<tabby> ');
      await input.pressSequentially(`penguin:<plush> in a house ${FAST}`);
      await input.press('Enter');
      assert.equal(await input.inputValue(), '');
      await page.locator('.msg.user .bubble', { hasText: COMPOSE }).waitFor();

      const message = jobMessages(page).first();
      const image = message.locator('.card img[data-kind="image"]');
      await image.waitFor({ timeout: MIN });
      const seen = (await page.evaluate('window.seenLines')) as string[];
      assert.ok(
        seen.some((l) => /^Queued|^Step/.test(l)),
        JSON.stringify(seen),
      );
      assert.ok(
        seen.some((l) => /^Step \d\/3/.test(l)),
        `no step x/y in ${JSON.stringify(seen)}`,
      );
      assert.ok(seen.includes('(preview)'), `no preview in ${JSON.stringify(seen)}`);
      await page.waitForFunction(
        (img) => (img as unknown as PageImage).complete,
        await image.elementHandle(),
      );
      assert.equal(await image.evaluate((img) => (img as unknown as PageImage).naturalWidth), 128);
      assert.match((await image.getAttribute('alt'))!, /a cat and a penguin in a house/);
      assert.equal(await text(message.locator('.card-title')), 'a cat and a penguin in a house');
      assert.equal(await message.locator('.progress').count(), 0, 'the progress line stays after the image');
      assert.equal(await jobMessages(page).count(), 1, 'one message per job');
    });

    it('gives back the command of a picture dropped onto the page', async (t) => {
      if (skipWithoutBrowser(t, browser)) return;
      const src = await jobMessages(page).first().locator('.card img[data-kind="image"]').getAttribute('src');
      const png = await bytesAt(base, src!);
      const recipe = readRecipe(png.bytes);
      assert.equal(recipe.kind, 'recipe');
      const drop = await page.evaluateHandle(
        ({ base64, name }) => {
          // Runs in the page, where DataTransfer exists (the test's types have no DOM).
          const page = globalThis as unknown as { DataTransfer: new () => { items: { add(f: File): void } } };
          const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
          const transfer = new page.DataTransfer();
          transfer.items.add(new File([bytes], name, { type: 'image/png' }));
          return transfer;
        },
        { base64: png.bytes.toString('base64'), name: 'cat.png' },
      );
      await page.dispatchEvent('#log', 'drop', { dataTransfer: drop });
      await page.locator('.msg.user .bubble', { hasText: 'Remix cat.png' }).waitFor();
      await page.locator('.msg', { hasText: 'Remix this picture' }).waitFor();
      const expected = recipe.kind === 'recipe' ? recipe.recipe.command.replace('/compose ', '') : '';
      assert.equal(await page.locator('#input').inputValue(), expected);
      await page.locator('#input').fill('');
    });

    it('shows the masks, then hides them again', async (t) => {
      if (skipWithoutBrowser(t, browser)) return;
      const message = jobMessages(page).first();
      await message.getByRole('button', { name: 'Show masks' }).click();
      const masks = message.locator('.masks img[data-kind="masks"]');
      await masks.waitFor();
      await page.waitForFunction(
        (img) => (img as unknown as PageImage).naturalWidth > 0,
        await masks.elementHandle(),
      );
      await page.screenshot({ path: join(tmpdir(), 'clora-playground.png') });
      await message.getByRole('button', { name: 'Hide masks' }).click();
      await masks.waitFor({ state: 'hidden' });
      await message.getByRole('button', { name: 'Show masks' }).click();
      await masks.waitFor({ state: 'visible' });
    });

    it('reruns into the same bytes, and New seed draws another seed', async (t) => {
      if (skipWithoutBrowser(t, browser)) return;
      const first = jobMessages(page).first();
      await first.getByRole('button', { name: 'Rerun' }).click();
      const second = jobMessages(page).nth(1);
      await second.locator('img[data-kind="image"]').waitFor({ timeout: MIN });
      const urls = await page
        .locator('article[data-job] .card img[data-kind="image"]')
        .evaluateAll((imgs) => imgs.map((i) => (i as unknown as PageImage).getAttribute('src')!));
      assert.equal(urls.length, 2);
      assert.notEqual(urls[0], urls[1]);
      const same = await page.evaluate(async (srcs: string[]) => {
        const [a, b] = await Promise.all(
          srcs.map(async (s) => new Uint8Array(await (await fetch(s)).arrayBuffer())),
        );
        return a.length > 0 && a.length === b.length && a.every((v, i) => v === b[i]);
      }, urls);
      assert.ok(same, 'the rerun drew different bytes');
      assert.equal(await text(fieldValue(second, 'Seed')), await text(fieldValue(first, 'Seed')));

      await first.getByRole('button', { name: 'New seed' }).click();
      const third = jobMessages(page).nth(2);
      await third.locator('img[data-kind="image"]').waitFor({ timeout: MIN });
      assert.notEqual(await text(fieldValue(third, 'Seed')), await text(fieldValue(first, 'Seed')));
    });

    it('walks the Tweak selects, each replacing its own message', async (t) => {
      if (skipWithoutBrowser(t, browser)) return;
      await jobMessages(page).first().getByRole('button', { name: 'Tweak' }).click();
      const menu = page.locator('article.bot', { has: page.locator('select') }).last();
      await menu.locator('.only-you').waitFor();
      assert.equal(await text(menu.locator('.text')), 'Change one LoRA, keep the seed:');
      await menu.locator('select').selectOption('0');
      const picker = menu.locator('select[aria-label="New LoRA for cat"]');
      await picker.waitFor();
      assert.equal(await picker.inputValue(), 'tabby');
      // plush already draws the penguin, so the cat is offered only what it can take.
      const values = await picker
        .locator('option:not([disabled])')
        .evaluateAll((options) => options.map((o) => (o as unknown as { value: string }).value));
      assert.deepEqual(values, ['tabby']);
    });

    it('cancels a long job from its message', async (t) => {
      if (skipWithoutBrowser(t, browser)) return;
      await page
        .locator('#input')
        .fill('/compose cat:<tabby> penguin:<plush> in a house --steps 40 --size 128x128');
      await page.locator('#input').press('Enter');
      const message = jobMessages(page).nth(3);
      await message.locator('.progress-line', { hasText: /^Step/ }).waitFor({ timeout: MIN });
      await message.getByRole('button', { name: 'Cancel' }).click();
      await message.locator('.progress-line', { hasText: 'Cancelled' }).waitFor();
      assert.equal(await message.getAttribute('data-state'), 'cancelled');
      assert.equal(await message.getByRole('button').count(), 0);
    });

    it('lists the LoRAs, answers a typo with the fix, starts no job and escapes what it echoes', async (t) => {
      if (skipWithoutBrowser(t, browser)) return;
      const input = page.locator('#input');
      await input.fill('/loras');
      await input.press('Enter');
      const list = page
        .locator('article.bot', { has: page.locator('.card-title', { hasText: /^LoRAs$/ }) })
        .last();
      await list.waitFor();
      assert.deepEqual(await list.locator('.field-name').allTextContents(), ['plush', 'tabby']);
      assert.equal(await list.locator('.only-you').count(), 1);
      await list.locator('select').selectOption('tabby');
      await page.locator('.card-title', { hasText: /^tabby$/ }).waitFor();

      const jobs = await jobMessages(page).count();
      await input.fill('/compose cat:<tabbby> <img src=x onerror=window.hacked=1>');
      await input.press('Enter');
      const error = page.locator('article.bot .text', { hasText: "did you mean 'tabby'" }).last();
      await error.waitFor();
      assert.match(await text(error), /Try: \/compose cat:<tabby> <img src=x onerror=window.hacked=1>/);
      assert.equal(await page.evaluate('window.hacked'), undefined);
      assert.equal(await page.locator('article img[src="x"]').count(), 0);
      assert.equal(await jobMessages(page).count(), jobs, 'a typo started a job');
      assert.equal(await page.locator('#connection').isHidden(), true, 'the event stream dropped');
      await page.locator('article[data-job]').first().scrollIntoViewIfNeeded();
      await page.screenshot({ path: join(tmpdir(), 'clora-playground-end.png') });
    });
  });
});

// ---------------------------------------------------------------- without a model

describe('playground with no model configured', { timeout: 2 * MIN }, () => {
  let app: App;
  let playground: Playground;
  let base: string;

  before(async () => {
    ({ app, playground } = await startWith({ CACHE_DIR: join(work, 'cache-bare') }));
    base = playground.address;
  });
  after(async () => {
    await playground?.stop();
    await app?.close();
  });

  it('says how to set MODEL_PATH, answers /compose with it, and still lists LoRAs', async () => {
    const status = (await (await fetch(`${base}/api/status`)).json()) as PlaygroundStatus;
    assert.equal(status.model.ready, false);
    assert.match(status.model.message ?? '', /MODEL_PATH/);
    assert.match(status.model.message ?? '', /npm run demo-model/);
    const compose = await post(base, '/api/command', { text: COMPOSE, tab: 'bare-tab-01' });
    assert.equal(compose.jobId, undefined);
    assert.match(JSON.stringify(compose.reply), /MODEL_PATH/);
    const help = await post(base, '/api/command', { text: '/help', tab: 'bare-tab-01' });
    assert.match(JSON.stringify(help.reply), /subject:<lora>/);
    const loras = await post(base, '/api/command', { text: '/loras', tab: 'bare-tab-01' });
    assert.match(JSON.stringify(loras.reply), /tabby/);
  });

  it('shows the banner in the page and answers /compose with it', async (t) => {
    const browser = await launchBrowser();
    if (skipWithoutBrowser(t, browser)) return;
    try {
      const page = await browser.newPage();
      await page.goto(`${base}/`);
      const banner = page.locator('#banner');
      await banner.waitFor();
      assert.match(await text(banner), /MODEL_PATH/);
      assert.match(await text(banner), /npm run demo-model/);
      assert.equal(await page.locator('#model-status').getAttribute('data-state'), 'missing');
      await page.locator('#input').fill('cat:<tabby> in a house');
      await page.locator('#input').press('Enter');
      await page.locator('article.bot .text', { hasText: 'MODEL_PATH' }).waitFor();
      assert.equal(await page.locator('article[data-job]').count(), 0);
    } finally {
      await browser.close();
    }
  });
});

// ---------------------------------------------------------------- npm run demo-model

describe('demo model', () => {
  it('installs the trained world and its two LoRAs, which the library accepts with their triggers', async () => {
    const out = join(work, 'demo');
    const demo = installDemo(out);
    const ck = openCheckpoint(demo.modelPath);
    // Trained weights: the page does not label them as noise (the fixture is not random either).
    assert.equal(
      hasRandomWeights(join(demo.modelPath, 'unet', 'diffusion_pytorch_model.safetensors')),
      false,
    );
    assert.equal(hasRandomWeights(join(fixture, 'tiny-sd15.safetensors')), false);
    assert.equal(ck.layout, 'diffusers');
    assert.equal(ck.unet.config.sample_size * 8, 256);
    assert.deepEqual(
      demo.loras.map((l) => l.name),
      DEMO_LORAS.map((l) => l.name),
    );
    const { LoraLibrary } = await import('../../bot/library/index.ts');
    const library = await LoraLibrary.open(
      demo.loraDir,
      { unet: ck.unet.weights, textEncoder: ck.textEncoder.weights },
      { watch: false },
    );
    try {
      await library.settled();
      assert.deepEqual(library.names(), ['ohwx-penguin', 'sks-cat']);
      for (const l of DEMO_LORAS) {
        const entry = (await library.check(l.name))!;
        assert.equal(entry.check.state, 'ok', JSON.stringify(entry.check));
        assert.equal(entry.triggers[0], `${l.trigger} ${l.subject}`);
      }
    } finally {
      library.close();
    }
    assert.throws(() => installDemo(join(work, 'demo2'), join(work, 'nowhere')), /npm run train-world/);

    // Started on it, the playground offers the demo's command, and it composes a picture with masks.
    const started = await startWith({
      MODEL_PATH: demo.modelPath,
      LORA_DIR: demo.loraDir,
      MAX_SIZE: '256',
      CACHE_DIR: join(work, 'cache-demo'),
    });
    const stream = new EventStream(started.playground.address, 'demo-tab-0001');
    try {
      const base = started.playground.address;
      const status = (await (await fetch(`${base}/api/status`)).json()) as PlaygroundStatus;
      assert.equal(status.model.random, false);
      assert.equal(status.example, DEMO_COMMAND);
      assert.equal(DEMO_COMMAND, '/compose penguin:<ohwx-penguin> cat:<sks-cat> in a house --masks');
      await stream.opened;
      const outcome = await post(base, '/api/command', {
        text: `${DEMO_COMMAND} --steps 4 --seed 1`,
        tab: stream.tab,
      });
      assert.ok(outcome.jobId, JSON.stringify(outcome.reply));
      const final = await stream.final(outcome.jobId);
      assert.ok(imageOf(final), JSON.stringify(final));
      assert.ok(imageOf(final, 'masks'), 'no masks picture');
      assert.match(JSON.stringify(final), /cat: sks-cat/);
    } finally {
      stream.close();
      await started.playground.stop();
      await started.app.close();
    }
  });
});
