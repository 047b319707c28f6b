// The bot's parts put together from the configuration: the LoRA library, the queue (on
// Redis with remote workers, or in this process with the engine on its own thread) and the
// platform-neutral commands. `npm start`, the adapters' tests and the playground use it.

import { hostname } from 'node:os';
import { composeSettings, DEFAULT_COMPOSE_LIMITS } from '../commands/compose/index.ts';
import {
  BLOB,
  type ComposeJobData,
  type ComposeJobProgress,
  type ComposeJobValue,
} from '../commands/jobs.ts';
import { ComposeCommands, type ComposeQueue, type ModelStatus } from '../commands/service.ts';
import type { Config } from '../config/index.ts';
import { defaultImageSize } from '../engine/clora/spec.ts';
import { nativeImageSize } from '../engine/models/config.ts';
import { openCheckpoint } from '../engine/weights/checkpoint.ts';
import { LoraCheckThread } from './library/check-client.ts';
import { LoraLibrary } from './library/index.ts';
import { createLogger, type Logger } from './log.ts';
import { BullQueue, LocalQueue, queueSettings } from './queue/index.ts';
import { EngineThread, engineOptions } from './worker/engine-client.ts';
import { composeProcessor } from './worker/processor.ts';

export interface App {
  config: Config;
  commands: ComposeCommands;
  queue: ComposeQueue;
  library: LoraLibrary;
  engine?: EngineThread;
  model(): ModelStatus;
  log: Logger;
  close(): Promise<void>;
}

const NO_MODEL =
  'No model is configured yet. Set MODEL_PATH to a Stable Diffusion 1.5 checkpoint (a diffusers folder or a .safetensors file) and restart; `npm run demo-model` writes a tiny test model to try the flow.';

export async function startApp(config: Config, options: { log?: Logger } = {}): Promise<App> {
  const log = options.log ?? createLogger(config.logLevel);
  const modelPath = config.engine.modelPath;
  let base: Parameters<typeof LoraLibrary.open>[1];
  let modelProblem: string | undefined;
  let nativeSize: number | undefined;
  if (modelPath) {
    try {
      const ck = openCheckpoint(modelPath, { tokenizerDir: config.engine.tokenizerDir });
      base = { unet: ck.unet.weights, textEncoder: ck.textEncoder.weights };
      nativeSize = nativeImageSize(ck.unet.config, ck.vae.config);
    } catch (e) {
      modelProblem = (e as Error).message;
      log.error(`cannot open the model at ${modelPath}`, e);
    }
  }
  const checks =
    base && modelPath
      ? new LoraCheckThread({ modelPath, tokenizerDir: config.engine.tokenizerDir })
      : undefined;
  const library = await LoraLibrary.open(config.engine.loraDir, base, {
    maxAddBytes: config.limits.loraUploadMaxMb * 1024 * 1024,
    checker: checks?.check,
  });
  library.on('warning', (m) => log.warn(m));

  let queue: ComposeQueue;
  let engine: EngineThread | undefined;
  if (config.queue.redisUrl) {
    queue = await BullQueue.open<ComposeJobData, ComposeJobValue, ComposeJobProgress>({
      redisUrl: config.queue.redisUrl,
      // A stable consumer name lets a restarted bot replay the completions it missed.
      consumer: `bot-${hostname()}`,
      onError: (e) => log.warn(`queue: ${e.message}`),
      ...queueSettings(config.queue),
    });
    log.info('queue: BullMQ on Redis; run `npm run worker` on the GPU hosts');
  } else {
    const local = new LocalQueue<ComposeJobData, ComposeJobValue, ComposeJobProgress>(
      queueSettings(config.queue),
    );
    if (modelPath && !modelProblem) {
      engine = new EngineThread(engineOptions(config));
      engine.ready().then(
        (t) =>
          log.info(
            `engine ready in ${((t.checkpointMs + t.compileMs) / 1000).toFixed(1)} s${t.reusedCache ? ' (cached)' : ''}`,
          ),
        (e: Error) => log.error(`the engine could not load ${modelPath}: ${e.message}`),
      );
      local.startWorker(
        composeProcessor(engine, library, {
          guidance: {
            iterations: config.engine.guidanceIterations,
            lossThreshold: config.engine.guidanceLossThreshold,
          },
        }),
      );
    }
    queue = local;
  }

  const model = (): ModelStatus => {
    if (config.queue.redisUrl) return { ready: true };
    if (!modelPath) return { ready: false, message: NO_MODEL };
    if (modelProblem)
      return { ready: false, message: `The model at MODEL_PATH cannot be used: ${modelProblem}` };
    if (engine?.status.state === 'failed')
      return { ready: false, message: `The engine could not load the model: ${engine.status.message}` };
    return { ready: true };
  };

  // A MAX_SIZE under the usual 256 minimum narrows it, so some size stays valid.
  const largestSide = Math.max(64, Math.floor(config.limits.maxSize / 64) * 64);
  const minSide = Math.min(DEFAULT_COMPOSE_LIMITS.minSide, largestSide);
  // The model's own size where this process can read the model; else the worker fills it in.
  const defaultSide =
    nativeSize === undefined
      ? null
      : defaultImageSize(nativeSize, { minSize: minSide, maxSize: config.limits.maxSize });
  const settings = composeSettings({
    limits: {
      maxLoras: config.limits.maxLoras,
      maxSteps: config.limits.maxSteps,
      maxSide: config.limits.maxSize,
      minSide,
    },
    defaults: { width: defaultSide, height: defaultSide },
  });
  const commands = new ComposeCommands({ queue, library, settings, model });
  queue.on('failed', (e) => {
    if (e.error.kind === 'internal') log.warn(`job ${e.id} failed: ${e.error.message}`);
  });
  return {
    config,
    commands,
    queue,
    library,
    engine,
    model,
    log,
    async close() {
      await queue.close();
      library.close();
      await checks?.close();
      await engine?.close();
    },
  };
}

export { BLOB };
