// The checks behind /healthz: the engine loaded, the queue reachable, the LoRA library scanned.

import { stat } from 'node:fs/promises';
import { Queue } from 'bullmq';
import type { EngineThread } from '../engine-host/engine-client.ts';
import type { LoraLibrary } from '../library/index.ts';
import { openRedis } from '../queue/bull-connection.ts';
import { type BullConnection, DEFAULT_PREFIX, DEFAULT_QUEUE_NAME } from '../queue/index.ts';
import type { HealthCheck } from './server.ts';

/** No engine here: `reason` says why (no model configured); undefined where remote workers run it. */
export function engineCheck(engine: EngineThread | undefined, missing?: string): HealthCheck {
  return () => {
    if (!engine) return missing ? { ok: false, reason: missing } : { ok: true, detail: 'on the workers' };
    const s = engine.status;
    if (s.state === 'ready') return { ok: true, detail: 'model loaded' };
    if (s.state === 'loading') return { ok: false, reason: 'loading the model' };
    return { ok: false, reason: `the model could not be loaded: ${s.message}` };
  };
}

export function libraryCheck(library: Pick<LoraLibrary, 'dir' | 'list'>): HealthCheck {
  return async () => {
    // Opening the library scans it; the folder vanishing later is what can go wrong.
    const folder = await stat(library.dir).catch(() => undefined);
    if (!folder?.isDirectory()) return { ok: false, reason: `the LoRA folder ${library.dir} is gone` };
    const n = library.list().length;
    return { ok: true, detail: `${n} LoRA${n === 1 ? '' : 's'} scanned` };
  };
}

/** Redis as the bot and workers see it: reachable or not, and BullMQ's own metrics of the queue. */
export class QueueProbe {
  private readonly redis;
  private readonly queue: Queue;

  constructor(connection: BullConnection) {
    this.redis = openRedis(connection, false);
    this.queue = new Queue(connection.queueName ?? DEFAULT_QUEUE_NAME, {
      connection: this.redis,
      prefix: connection.prefix ?? DEFAULT_PREFIX,
    });
    // Connection errors surface as a failing check; the client reconnects by itself.
    this.queue.on('error', () => undefined);
  }

  readonly check: HealthCheck = async () => {
    try {
      await this.redis.ping();
      return { ok: true, detail: 'Redis reachable' };
    } catch (e) {
      return { ok: false, reason: `Redis unreachable (${(e as Error).message})` };
    }
  };

  metrics(): Promise<string> {
    return this.queue.exportPrometheusMetrics();
  }

  async close(): Promise<void> {
    await this.queue.close().catch(() => undefined);
    await this.redis.quit().catch(() => undefined);
  }
}
