// Operating the bot: /healthz and /metrics on METRICS_PORT (bot in every mode, and workers),
// and the graceful stop on SIGTERM. The entry points start this first, so a probe can tell
// "starting" from "broken", then hand it the parts to watch once they exist.

import type { Config } from '../../config/index.ts';
import type { EngineThread } from '../engine-host/engine-client.ts';
import type { LoraLibrary } from '../library/index.ts';
import { engineCheck, libraryCheck, QueueProbe } from './health.ts';
import { BotMetrics, type ComposeProcessor } from './metrics.ts';
import { type OpsServer, startOpsServer } from './server.ts';

export { BotMetrics } from './metrics.ts';
export type { HealthCheck, HealthStatus, OpsServer } from './server.ts';
export { startOpsServer } from './server.ts';
export { onShutdownSignals } from './shutdown.ts';

/** What /healthz watches once the process has it. */
export interface WatchedParts {
  library: Pick<LoraLibrary, 'dir' | 'list'>;
  /** the engine of this process, if it runs one */
  engine?: EngineThread;
  /** why there is no engine when there should be one (no model configured) */
  engineMissing?: string;
  /** the Redis queue, where jobs go through one */
  redisUrl?: string;
}

export interface Ops {
  readonly metrics: BotMetrics;
  readonly server: OpsServer;
  /** The processor with its runs counted and timed. */
  instrument(processor: ComposeProcessor): ComposeProcessor;
  watch(parts: WatchedParts): void;
  close(): Promise<void>;
}

/** Starts /healthz and /metrics when METRICS_PORT is set; undefined otherwise. */
export async function startOps(config: Pick<Config, 'ops'>): Promise<Ops | undefined> {
  const { metricsPort, metricsHost } = config.ops;
  if (metricsPort === undefined) return undefined;
  const metrics = new BotMetrics();
  const server = await startOpsServer({ port: metricsPort, host: metricsHost, metrics });
  let probe: QueueProbe | undefined;
  return {
    metrics,
    server,
    instrument: (processor) => metrics.instrument(processor),
    watch(parts) {
      if (parts.engine) metrics.watchEngineMemory();
      if (parts.redisUrl && !probe) {
        const queue = new QueueProbe({ redisUrl: parts.redisUrl });
        probe = queue;
        metrics.addSource(() => queue.metrics());
      }
      server.setChecks({
        engine: engineCheck(parts.engine, parts.engineMissing),
        queue: probe ? probe.check : () => ({ ok: true, detail: 'in this process' }),
        library: libraryCheck(parts.library),
      });
    },
    async close() {
      await server.close();
      await probe?.close();
    },
  };
}
