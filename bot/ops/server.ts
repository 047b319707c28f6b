// The operator's HTTP endpoints on METRICS_PORT, in every mode and in workers:
//   GET /healthz   200 with each check's detail, or 503 with the first failing check's reason
//   GET /metrics   Prometheus text format
// node:http is enough for two read-only routes.

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { BotMetrics } from './metrics.ts';

export type HealthStatus = { ok: true; detail: string } | { ok: false; reason: string };
export type HealthCheck = () => HealthStatus | Promise<HealthStatus>;

export interface OpsServer {
  readonly port: number;
  /** Replaces the checks /healthz runs; until the first call it answers 503 "starting". */
  setChecks(checks: Record<string, HealthCheck>): void;
  close(): Promise<void>;
}

// A check that hangs (Redis unreachable, say) must still let /healthz answer in time for a probe.
const CHECK_TIMEOUT_MS = 3000;

export async function startOpsServer(options: {
  port: number;
  host: string;
  metrics: BotMetrics;
}): Promise<OpsServer> {
  let checks: Record<string, HealthCheck> | undefined;

  const health = async (res: ServerResponse) => {
    if (!checks) return send(res, 503, { status: 'unavailable', reason: 'starting: not ready yet' });
    const names = Object.keys(checks);
    const results = await Promise.all(names.map((name) => runCheck(checks![name])));
    const report = Object.fromEntries(
      names.map((name, i) => [name, results[i].ok ? results[i].detail : results[i].reason]),
    );
    const failing = names.findIndex((_, i) => !results[i].ok);
    if (failing < 0) return send(res, 200, { status: 'ok', checks: report });
    send(res, 503, {
      status: 'unavailable',
      reason: `${names[failing]}: ${report[names[failing]]}`,
      checks: report,
    });
  };

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? '/', 'http://ops').pathname;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/healthz') {
      void health(res);
      return;
    }
    if (path === '/metrics') {
      options.metrics.render().then(
        (text) => {
          res.writeHead(200, { 'Content-Type': options.metrics.contentType }).end(text);
        },
        (e: Error) => send(res, 500, { error: e.message }),
      );
      return;
    }
    send(res, 404, { error: 'not found: try /healthz or /metrics' });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    setChecks(next) {
      checks = next;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function runCheck(check: HealthCheck): Promise<HealthStatus> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<HealthStatus>((resolve) => {
    timer = setTimeout(() => resolve({ ok: false, reason: 'no answer within 3 s' }), CHECK_TIMEOUT_MS);
  });
  try {
    return await Promise.race([Promise.resolve(check()), late]);
  } catch (e) {
    return { ok: false, reason: (e as Error).message };
  } finally {
    clearTimeout(timer);
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store' });
  res.end(`${JSON.stringify(body)}\n`);
}
