// npm run worker: a GPU (or CPU) host that takes composition jobs from Redis. Start as
// many as you like; BullMQ hands each job to one of them and re-runs a job whose worker
// died. Needs REDIS_URL, MODEL_PATH and the same LoRA files under LORA_DIR as the bot.

import { ConfigError, loadConfig } from '../../config/index.ts';
import { openCheckpoint } from '../../engine/weights/checkpoint.ts';
import { checkLoraDir } from '../app.ts';
import { LoraCheckThread } from '../library/check-client.ts';
import { LoraLibrary } from '../library/index.ts';
import { createLogger } from '../log.ts';
import { onShutdownSignals, startOps } from '../ops/index.ts';
import { startBullWorker } from '../queue/index.ts';
import { EngineThread, engineOptions } from './engine-client.ts';
import { composeProcessor } from './processor.ts';

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
  const modelPath = config.engine.modelPath!;
  checkLoraDir(config.engine.loraDir);
  const ck = openCheckpoint(modelPath, { tokenizerDir: config.engine.tokenizerDir });
  const checks = new LoraCheckThread({ modelPath, tokenizerDir: config.engine.tokenizerDir });
  const library = await LoraLibrary.open(
    config.engine.loraDir,
    { unet: ck.unet.weights, textEncoder: ck.textEncoder.weights },
    { checker: checks.check, headerReader: checks.readHeader, onWarning: (m) => log.warn(m) },
  );
  const engine = new EngineThread(engineOptions(config));
  ops?.watch({ library, engine, redisUrl: config.queue.redisUrl });
  const load = await engine.ready();
  log.info(
    `engine ready in ${((load.checkpointMs + load.compileMs) / 1000).toFixed(1)} s; taking jobs from Redis`,
  );
  const processor = composeProcessor(engine, library, {
    guidance: {
      iterations: config.engine.guidanceIterations,
      lossThreshold: config.engine.guidanceLossThreshold,
    },
  });
  const worker = await startBullWorker(ops ? ops.instrument(processor) : processor, {
    redisUrl: config.queue.redisUrl!,
    concurrency: 1,
    onError: (e: Error) => log.warn(`queue: ${e.message}`),
  });
  const graceMs = config.ops.shutdownGraceSeconds * 1000;
  onShutdownSignals(
    async () => {
      await worker.close({ graceMs });
      await engine.close();
      library.close();
      await checks.close();
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
