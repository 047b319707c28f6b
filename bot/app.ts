// The bot's parts put together from the configuration: the engine host (the LoRA library, and
// without Redis the engine on its own thread), the queue (on Redis with remote workers, or in
// this process) and the platform-neutral commands. `npm start`, the adapters' tests and the playground use it.

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
import type { EngineThread } from './engine-host/engine-client.ts';
import { type ComposeProcessor, openEngineHost } from './engine-host/index.ts';
import { composePreflight } from './engine-host/preflight.ts';
import type { LoraLibrary } from './library/index.ts';
import { createLogger, type Logger } from './log.ts';
import { openJobQueue } from './queue/index.ts';
import { pictureComparison } from './render/compare.ts';
import { readRecipe } from './render/recipe.ts';

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
  instrument?: (processor: ComposeProcessor) => ComposeProcessor;
}

const NO_MODEL =
  'No model is configured yet. Set MODEL_PATH to a Stable Diffusion 1.5 checkpoint (a diffusers folder or a .safetensors file) and restart; `npm run demo-model` installs a small trained demo model (the world of shapes) and its two LoRAs to try the flow.';

export async function startApp(config: Config, options: StartOptions = {}): Promise<App> {
  const log = options.log ?? createLogger(config.logLevel, 'bot', config.ops.logFormat);
  const modelPath = config.engine.modelPath;
  // With Redis the workers compose; without it, this process does, on the engine's own thread.
  const host = await openEngineHost(config, {
    log,
    compose: !config.queue.redisUrl,
    instrument: options.instrument,
  });
  const { library, engine } = host;
  engine?.ready().then(
    (t) =>
      log.info(
        `engine ready in ${((t.checkpointMs + t.compileMs) / 1000).toFixed(1)} s${t.reusedCache ? ' (cached)' : ''}`,
      ),
    (e: Error) => log.error(`the engine could not load ${modelPath}: ${e.message}`),
  );
  const { queue, runner, listen } = await openJobQueue<ComposeJobData, ComposeJobValue, ComposeJobProgress>(
    config.queue,
    {
      localProcessor: host.processor,
      queueName: options.queueName,
      // A stable consumer name lets a restarted bot replay the completions it missed.
      consumer: `bot-${hostname()}`,
      onError: (e) => log.warn(`queue: ${e.message}`),
    },
  );
  if (config.queue.redisUrl) log.info('queue: BullMQ on Redis; run `npm run worker` on the GPU hosts');

  const model = (): ModelStatus => {
    if (config.queue.redisUrl) return { ready: true };
    if (!modelPath) return { ready: false, message: NO_MODEL };
    if (host.modelProblem)
      return { ready: false, message: `The model at MODEL_PATH cannot be used: ${host.modelProblem}` };
    if (engine?.status.state === 'failed')
      return { ready: false, message: `The engine could not load the model: ${engine.status.message}` };
    return { ready: true };
  };

  const settings = composeSettingsOf(config.limits, host.model?.nativeSize);
  const commands = new ComposeCommands({
    queue,
    library,
    readRecipe,
    drawComparison: pictureComparison,
    settings,
    model,
    ...(host.model ? { preflight: composePreflight(host.model.tokenizer, library) } : {}),
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
      if (!runner) return;
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, graceMs);
      });
      await Promise.race([runner.close(), late]);
      clearTimeout(timer);
    },
    listen,
    async close() {
      await queue.close();
      await host.close();
    },
  };
}

export { BLOB };
