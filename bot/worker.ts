// npm run worker: a GPU (or CPU) host that takes composition jobs from Redis. Start as
// many as you like; BullMQ hands each job to one of them and re-runs a job whose worker
// died. Needs REDIS_URL, MODEL_PATH and the same LoRA files under LORA_DIR as the bot.

import { ConfigError, loadConfig } from '../config/index.ts';
import { openEngineHost } from './engine-host/index.ts';
import { createLogger } from './log.ts';
import { onShutdownSignals, startOps } from './ops/index.ts';
import { startBullRunner } from './queue/index.ts';

async function main(): Promise<void> {
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig(process.env, { role: 'worker' });
  } catch (e) {
    process.stderr.write(`${e instanceof ConfigError ? e.message : String(e)}\n`);
    process.exit(2);
  }
  const log = createLogger(config.logLevel, 'worker', config.ops.logFormat);
  // Up before the model loads, so a probe sees "loading" rather than nothing.
  const ops = await startOps(config);
  if (ops)
    log.info(`health and metrics: http://${config.ops.metricsHost}:${ops.server.port}/healthz, /metrics`);
  const host = await openEngineHost(config, {
    log,
    compose: true,
    requireModel: true,
    instrument: ops?.instrument,
  });
  const { library, engine, processor } = host;
  if (!engine || !processor) throw new Error('MODEL_PATH is not set');
  ops?.watch({ library, engine, redisUrl: config.queue.redisUrl });
  const load = await engine.ready();
  log.info(
    `engine ready in ${((load.checkpointMs + load.compileMs) / 1000).toFixed(1)} s; taking jobs from Redis`,
  );
  const runner = await startBullRunner(processor, {
    redisUrl: config.queue.redisUrl!,
    concurrency: 1,
    onError: (e: Error) => log.warn(`queue: ${e.message}`),
  });
  const graceMs = config.ops.shutdownGraceSeconds * 1000;
  onShutdownSignals(
    async () => {
      await runner.close({ graceMs });
      await host.close();
      await ops?.close();
      log.info('stopped');
    },
    { graceMs, log },
  );
}

main().catch((e: unknown) => {
  process.stderr.write(`the worker could not start: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
