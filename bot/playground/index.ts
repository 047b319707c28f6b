// The playground: a local web chat speaking the bot's commands, for trying compositions
// without a Discord or Slack account. One page (public/), a small JSON API and a stream of
// Server-Sent Events per browser tab, on node:http — a handful of routes needs no framework.
//
//   POST /api/command {text, tab}        slash command or plain text (= /compose)
//   POST /api/action  {id, value?, tab}  a button or select of a reply
//   GET  /api/complete?text=…            completions of the text before the caret
//   GET  /api/status                     the model, the library, an example command
//   GET  /api/events?tab=…               job updates and status changes (SSE)
//   GET  /api/jobs/:id/blob/:name        a job's picture, from the job record

import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { basename, dirname } from 'node:path';
import { BLOB } from '../../commands/jobs.ts';
import { MAX_REMIX_BYTES } from '../../commands/remix.ts';
import type { ChatContext } from '../../commands/service.ts';
import { SafetensorsFile } from '../../engine/weights/safetensors.ts';
import type { Adapter } from '../adapter.ts';
import type { App } from '../app.ts';
import { addFromCivitai, type CivitaiAddRequest, civitaiClient } from '../civitai/index.ts';
import { StartProblem } from '../start-problem.ts';
import { runCommand } from './commands.ts';
import { complete, MAX_COMPLETIONS } from './complete.ts';
import { EventHub, TAB_ID } from './events.ts';
import { hostPolicy, refusalOf, setSecurityHeaders } from './guard.ts';
import { HttpError, readJsonObject, sendError, sendJson, stringField } from './io.ts';
import { toWire } from './wire.ts';

export interface PlaygroundOptions {
  heartbeatMs?: number;
  /** how long the jobs of a tab that lost its stream are still followed */
  graceMs?: number;
  progressIntervalMs?: number;
}

export interface Playground extends Adapter {
  /** open event streams and the jobs followed for them: both fall to 0 as tabs close and jobs end */
  activity(): { streams: number; jobs: number };
}

/** What the header and the banner of the page show. */
export interface PlaygroundStatus {
  model: {
    ready: boolean;
    /** what to do when it is not ready */
    message?: string;
    /** the checkpoint's file or folder name, with the folder it is in */
    name?: string;
    engine: 'loading' | 'ready' | 'failed' | 'remote workers' | 'none';
    /** written by `npm run demo-model` (or random-model): it draws noise */
    random: boolean;
  };
  loras: { total: number; usable: number };
  /** a /compose command with this library's LoRAs */
  example: string;
}

const MAX_BODY_BYTES = 16 * 1024;
/** A dropped picture travels as base64 in JSON (so the same-site JSON guard covers it). */
const MAX_REMIX_BODY_BYTES = Math.ceil((MAX_REMIX_BYTES * 4) / 3) + 1024;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const MAX_TEXT = 4000;
const MAX_ID = 100;
const STATUS_POLL_MS = 1000;
const BLOB_NAMES = new Set<string>(Object.values(BLOB));
const IMAGE_MIMES = new Set(['image/png', 'image/webp', 'image/jpeg', 'image/gif']);
const BLOB_ROUTE = /^\/api\/jobs\/([A-Za-z0-9_-]{1,64})\/blob\/([a-z]{1,16})$/;

/** The page's files, read once; requests name one of these keys, never a path. */
const STATIC_FILES: Readonly<Record<string, { file: string; type: string }>> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/style.css': { file: 'style.css', type: 'text/css; charset=utf-8' },
  '/favicon.svg': { file: 'favicon.svg', type: 'image/svg+xml' },
};

function loadStaticFiles(): Map<string, { body: Buffer; type: string }> {
  const dir = new URL('./public/', import.meta.url);
  const files = new Map<string, { body: Buffer; type: string }>();
  for (const [route, { file, type }] of Object.entries(STATIC_FILES)) {
    files.set(route, { body: readFileSync(new URL(file, dir)), type });
  }
  return files;
}

// The key tools/random-model.ts stamps into the checkpoints it writes.
const RANDOM_MODEL_KEY = 'clora.random_model';

/** Whether the checkpoint at `path` is one of our random-weight models. */
export function hasRandomWeights(path: string | undefined): boolean {
  if (!path?.toLowerCase().endsWith('.safetensors')) return false;
  try {
    const file = SafetensorsFile.open(path);
    const random = file.metadata[RANDOM_MODEL_KEY] !== undefined;
    file.close();
    return random;
  } catch {
    return false; // the app reports an unreadable model itself
  }
}

export function playgroundStatus(app: App, random = false): PlaygroundStatus {
  const model = app.model();
  const path = app.config.engine.modelPath;
  const engine: PlaygroundStatus['model']['engine'] = app.config.queue.redisUrl
    ? 'remote workers'
    : app.engine
      ? app.engine.status.state
      : 'none';
  const entries = app.library.list();
  const usable = app.library.names();
  return {
    model: {
      ready: model.ready,
      ...(model.message ? { message: model.message } : {}),
      // The folder above says more than a bare `model` or `model.safetensors`.
      ...(path ? { name: `${basename(dirname(path))}/${basename(path)}` } : {}),
      engine,
      random,
    },
    loras: { total: entries.length, usable: usable.length },
    example: exampleCommand(usable),
  };
}

/** `/compose` with up to two of the library's LoRAs, each bound to a subject its name suggests, masks shown. */
function exampleCommand(names: readonly string[]): string {
  if (names.length === 0) return '/compose cat:<sks-cat> penguin:<ohwx-penguin> in a house --masks';
  const fallback = ['cat', 'dog'];
  const bindings = names.slice(0, 2).map((name, i) => {
    // `plush-penguin` suggests a penguin; a name with no plain word in it gets a stock subject.
    const word = name.split('-').at(-1) ?? '';
    return `${/^[a-z]{2,12}$/.test(word) ? word : fallback[i]}:<${name}>`;
  });
  return `/compose ${bindings.join(' ')} in a house --masks`;
}

export async function startPlayground(app: App, options: PlaygroundOptions = {}): Promise<Playground> {
  const log = app.log.child('playground');
  const files = loadStaticFiles();
  const { host } = app.config.playground;
  const random = hasRandomWeights(app.config.engine.modelPath);
  const status = () => playgroundStatus(app, random);
  const hub = new EventHub(app.queue, app.commands, status, log, {
    heartbeatMs: options.heartbeatMs ?? 15_000,
    graceMs: options.graceMs ?? 30_000,
    progressIntervalMs: options.progressIntervalMs ?? 250,
    maxTabs: 32,
  });
  let policy = hostPolicy(host, app.config.playground.port);

  const contextOf = (tab: string): ChatContext => ({
    platform: 'playground',
    userId: 'playground',
    userName: 'you',
    scope: 'playground',
    channel: tab,
    isAdmin: true,
  });

  // The playground's user is the operator at this machine: an admin, so Civitai imports are open.
  const fromCivitai = async (request: CivitaiAddRequest) =>
    (
      await addFromCivitai(
        request,
        civitaiClient(app.config),
        app.library,
        app.config.limits.loraUploadMaxMb * 1024 * 1024,
      )
    ).reply;

  const tabOf = (body: Record<string, unknown>): string => {
    const tab = stringField(body, 'tab', { maxLength: 64 })!;
    if (!TAB_ID.test(tab)) throw new HttpError(400, "'tab' must be 8–64 letters, digits, '-' or '_'");
    return tab;
  };

  const answer = async (
    res: ServerResponse,
    tab: string,
    outcome: Awaited<ReturnType<typeof runCommand>>,
  ): Promise<void> => {
    const reply = await toWire(outcome.reply, app.queue);
    if (outcome.jobId) hub.follow(tab, outcome.jobId);
    sendJson(res, 200, {
      reply,
      ...(outcome.jobId ? { jobId: outcome.jobId } : {}),
      ...(outcome.replace ? { replace: true } : {}),
      ...(outcome.prefill ? { prefill: outcome.prefill } : {}),
    });
  };

  const routes = async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    const path = url.pathname;
    const method = req.method ?? 'GET';
    const page = files.get(path);
    if (page) {
      if (method !== 'GET' && method !== 'HEAD') throw new HttpError(405, 'only GET here');
      res.writeHead(200, {
        'Content-Type': page.type,
        'Content-Length': page.body.length,
        'Cache-Control': 'no-cache',
      });
      res.end(method === 'HEAD' ? undefined : page.body);
      return;
    }
    if (path === '/api/command' || path === '/api/action') {
      if (method !== 'POST') throw new HttpError(405, 'send a POST');
      const body = await readJsonObject(req, MAX_BODY_BYTES);
      const tab = tabOf(body);
      const ctx = contextOf(tab);
      if (path === '/api/command') {
        const text = stringField(body, 'text', { maxLength: MAX_TEXT })!;
        log.debug(`command: ${text}`);
        return answer(res, tab, await runCommand(app.commands, text, ctx, app.library, fromCivitai));
      }
      const id = stringField(body, 'id', { maxLength: MAX_ID })!;
      const value = stringField(body, 'value', { maxLength: MAX_ID, optional: true });
      log.debug(`action: ${id}${value === undefined ? '' : ` = ${value}`}`);
      return answer(res, tab, await app.commands.action(id, ctx, value));
    }
    if (path === '/api/remix') {
      if (method !== 'POST') throw new HttpError(405, 'send a POST');
      const body = await readJsonObject(req, MAX_REMIX_BODY_BYTES);
      const tab = tabOf(body);
      const image = stringField(body, 'image', { maxLength: MAX_REMIX_BODY_BYTES })!;
      if (!BASE64.test(image)) throw new HttpError(400, "'image' must be the picture's bytes in base64");
      return answer(res, tab, app.commands.remix(Buffer.from(image, 'base64')));
    }
    if (method !== 'GET') throw new HttpError(405, 'only GET here');
    if (path === '/api/status') return sendJson(res, 200, status());
    if (path === '/api/complete') {
      const text = url.searchParams.get('text') ?? '';
      if (text.length > MAX_TEXT) throw new HttpError(413, 'the text is too long to complete');
      const library = app.library;
      const completions = complete(text, {
        names: () => library.names(),
        describe: (name) => {
          const triggers = library.get(name)?.triggers ?? [];
          return triggers.length > 0 ? `triggers: ${triggers.join(', ')}` : undefined;
        },
      }).slice(0, MAX_COMPLETIONS);
      return sendJson(res, 200, { completions });
    }
    if (path === '/api/events') {
      const tab = url.searchParams.get('tab') ?? '';
      if (!TAB_ID.test(tab)) throw new HttpError(400, "'tab' must be 8–64 letters, digits, '-' or '_'");
      if (!hub.connect(tab, res))
        throw new HttpError(503, 'too many playground tabs are open; close some and reload');
      return;
    }
    const blob = BLOB_ROUTE.exec(path);
    if (blob) {
      const [, jobId, name] = blob;
      const job = BLOB_NAMES.has(name) ? await app.queue.get(jobId) : undefined;
      const bytes = job?.result?.blobs[name];
      if (!job || !bytes)
        throw new HttpError(
          404,
          'that picture is no longer stored (finished jobs expire); run /compose again',
        );
      const declared = job.result?.value.pictures[name];
      res.writeHead(200, {
        'Content-Type': declared && IMAGE_MIMES.has(declared) ? declared : sniffImage(bytes),
        'Content-Length': bytes.byteLength,
        // A job's pictures never change once it has finished.
        'Cache-Control': 'private, max-age=86400, immutable',
      });
      res.end(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      return;
    }
    throw new HttpError(404, 'nothing here; open / for the playground');
  };

  const server = createServer((req, res) => {
    setSecurityHeaders(res);
    const url = new URL(req.url ?? '/', 'http://playground.invalid');
    const refusal = refusalOf(req, policy, url.pathname);
    if (refusal) {
      sendError(res, refusal.status, refusal.message);
      return;
    }
    routes(req, res, url).catch((e: unknown) => {
      if (e instanceof HttpError) {
        // Close the connection after the answer rather than parse a refused body's rest as a request.
        if (e.status === 413) res.setHeader('Connection', 'close');
        sendError(res, e.status, e.message);
        return;
      }
      log.error(`${req.method} ${url.pathname} failed`, e);
      sendError(res, 500, 'the playground hit an error; the bot log has the details');
    });
  });

  await new Promise<void>((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException) => reject(listenError(e, host, app.config.playground.port));
    server.once('error', onError);
    server.listen(app.config.playground.port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  policy = hostPolicy(host, port);
  server.on('error', (e) => log.error('playground server error', e));

  // The page's header follows the engine as it loads (or fails) and the library as it changes.
  let lastStatus = JSON.stringify(status());
  const poll = setInterval(() => {
    const now = JSON.stringify(status());
    if (now !== lastStatus) {
      lastStatus = now;
      hub.broadcastStatus();
    }
  }, STATUS_POLL_MS);
  poll.unref();

  return {
    name: 'playground',
    address: `http://${urlHost(host)}:${port}`,
    activity: () => ({ streams: hub.openStreams, jobs: hub.followedJobs }),
    async stop() {
      clearInterval(poll);
      hub.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

/** The host as a browser on this machine would write it in a URL. */
function urlHost(host: string): string {
  if (host === '0.0.0.0' || host === '' || host === '::') return '127.0.0.1';
  return host.includes(':') ? `[${host}]` : host;
}

function listenError(e: NodeJS.ErrnoException, host: string, port: number): Error {
  switch (e.code) {
    case 'EADDRINUSE':
      return new StartProblem(
        `the playground cannot listen on ${host}:${port}: the port is in use; set PLAYGROUND_PORT to a free port (0 picks one)`,
      );
    case 'EACCES':
      return new StartProblem(
        `the playground may not listen on port ${port}; set PLAYGROUND_PORT to a port above 1023`,
      );
    case 'EADDRNOTAVAIL':
    case 'ENOTFOUND':
      return new StartProblem(
        `the playground cannot listen on ${host}: no such local address; set PLAYGROUND_HOST (default 127.0.0.1)`,
      );
    default:
      return e;
  }
}

/** PNG, WebP, JPEG or GIF by magic bytes; job pictures are always one of these. */
function sniffImage(bytes: Uint8Array): string {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, Math.min(bytes.byteLength, 12));
  if (b.subarray(0, 4).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47]))) return 'image/png';
  if (b.subarray(0, 4).toString('latin1') === 'RIFF' && b.subarray(8, 12).toString('latin1') === 'WEBP')
    return 'image/webp';
  if (b[0] === 0xff && b[1] === 0xd8) return 'image/jpeg';
  if (b.subarray(0, 3).toString('latin1') === 'GIF') return 'image/gif';
  return 'application/octet-stream';
}
