// The bot's parts put together from the configuration: the LoRA library, the queue (on
// Redis with remote workers, or in this process with the engine on its own thread) and the
// platform-neutral commands. `npm start`, the adapters' tests and the playground use it.

import { statSync } from 'node:fs';
import { hostname } from 'node:os';
import { composeSettingsOf } from '../commands/compose/index.ts';
import {
  BLOB,
  type ComposeJobData,
  type ComposeJobProgress,
  type ComposeJobValue,
} from '../commands/jobs.ts';
import { ComposeCommands, type ComposeQueue, type ModelStatus } from '../commands/service.ts';
import type { Config } from '../config/index.ts';
import { nativeImageSize } from '../engine/models/config.ts';
import { ClipTokenizer } from '../engine/tokenizer/index.ts';
import { openCheckpoint } from '../engine/weights/checkpoint.ts';
import { LoraCheckThread } from './library/check-client.ts';
import { LoraLibrary } from './library/index.ts';
import { createLogger, type Logger } from './log.ts';
import { BullQueue, type JobWorker, LocalQueue, queueSettings } from './queue/index.ts';
import { readRecipe } from './render/recipe.ts';
import { StartProblem } from './start-problem.ts';
import { EngineThread, engineOptions } from './worker/engine-client.ts';
import { composePreflight } from './worker/preflight.ts';
import { composeProcessor } from './worker/processor.ts';

export interface App {
  config: Config;
  commands: ComposeCommands;
  queue: ComposeQueue;
  library: LoraLibrary;
  engine?: EngineThread;
  model(): ModelStatus;
  log: Logger;
  /**
   * Shutdown, first half: the job running in this process (no REDIS_URL) may finish for up to
   * `graceMs`, and no new one starts. With Redis the workers run jobs, so there is nothing to wait for.
   */
  drain(graceMs: number): Promise<void>;
  /**
   * Call once the adapters are listening: the queue's events start flowing, first those of
   * jobs that moved while this bot was down (with Redis), so each is delivered once.
   */
  listen(): void;
  close(): Promise<void>;
}

export interface StartOptions {
  log?: Logger;
  /** BullMQ's queue name (REDIS_URL), for bots and workers that share a Redis with others */
  queueName?: string;
  /** wraps the in-process engine's job processor, e.g. to count and time its runs for /metrics */
  instrument?: (processor: ReturnType<typeof composeProcessor>) => ReturnType<typeof composeProcessor>;
}

const NO_MODEL =
  'No model is configured yet. Set MODEL_PATH to a Stable Diffusion 1.5 checkpoint (a diffusers folder or a .safetensors file) and restart; `npm run demo-model` writes a tiny test model to try the flow.';

export async function startApp(config: Config, options: StartOptions = {}): Promise<App> {
  const log = options.log ?? createLogger(config.logLevel, 'bot', config.ops.logFormat);
  const modelPath = config.engine.modelPath;
  let base: Parameters<typeof LoraLibrary.open>[1];
  let modelProblem: string | undefined;
  let tokenizer: ClipTokenizer | undefined;
  let nativeSize: number | undefined;
  if (modelPath) {
    try {
      const ck = openCheckpoint(modelPath, { tokenizerDir: config.engine.tokenizerDir });
      base = { unet: ck.unet.weights, textEncoder: ck.textEncoder.weights };
      tokenizer = ClipTokenizer.fromDir(ck.tokenizerDir);
      nativeSize = nativeImageSize(ck.unet.config, ck.vae.config);
    } catch (e) {
      // Without Redis, main() says this once as the model's status; a stack would add nothing.
      modelProblem = (e as Error).message;
      if (config.queue.redisUrl) log.warn(`MODEL_PATH cannot be used to check LoRAs: ${modelProblem}`);
    }
  }
  checkLoraDir(config.engine.loraDir);
  // Headers are read on this thread too, with or without a model to check against.
  const checks = new LoraCheckThread(
    base && modelPath ? { modelPath, tokenizerDir: config.engine.tokenizerDir } : {},
  );
  const library = await LoraLibrary.open(config.engine.loraDir, base, {
    maxAddBytes: config.limits.loraUploadMaxMb * 1024 * 1024,
    checker: base ? checks.check : undefined,
    headerReader: checks.readHeader,
    onWarning: (m) => log.warn(m),
  });

  let queue: ComposeQueue;
  let engine: EngineThread | undefined;
  let localWorker: JobWorker | undefined;
  let listen = () => {};
  if (config.queue.redisUrl) {
    const bull = await BullQueue.open<ComposeJobData, ComposeJobValue, ComposeJobProgress>({
      redisUrl: config.queue.redisUrl,
      ...(options.queueName ? { queueName: options.queueName } : {}),
      holdEvents: true,
      // A stable consumer name lets a restarted bot replay the completions it missed.
      consumer: `bot-${hostname()}`,
      onError: (e) => log.warn(`queue: ${e.message}`),
      ...queueSettings(config.queue),
    });
    queue = bull;
    listen = () => bull.listen();
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
      const processor = composeProcessor(engine, library, {
        guidance: {
          iterations: config.engine.guidanceIterations,
          lossThreshold: config.engine.guidanceLossThreshold,
        },
      });
      localWorker = local.startWorker(options.instrument ? options.instrument(processor) : processor);
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

  const settings = composeSettingsOf(config.limits, nativeSize);
  const commands = new ComposeCommands({
    queue,
    library,
    readRecipe,
    settings,
    model,
    ...(tokenizer ? { preflight: composePreflight(tokenizer, library) } : {}),
  });
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
    async drain(graceMs) {
      if (!localWorker) return;
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, graceMs);
      });
      await Promise.race([localWorker.close(), late]);
      clearTimeout(timer);
    },
    listen,
    async close() {
      await queue.close();
      library.close();
      await checks.close();
      await engine?.close();
    },
  };
}

/** LORA_DIR must be a folder (it is created when missing). */
export function checkLoraDir(dir: string): void {
  try {
    if (!statSync(dir).isDirectory())
      throw new StartProblem(
        `LORA_DIR=${dir} is a file, not a folder: point it at the folder of LoRA .safetensors files`,
      );
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    if (e instanceof StartProblem) throw e;
    throw new StartProblem(
      `LORA_DIR=${dir} cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
    );
  }
}

export { BLOB };
