// The engine's host: what a process needs to run compositions, wired once for the bot (no
// REDIS_URL: jobs run in its own process) and for `npm run worker` (jobs from Redis): the
// checkpoint LoRAs are checked against, the LoRA library with its check thread, and the engine
// on its own thread behind the queue's job processor.

import { statSync } from 'node:fs';
import type { ComposeJobData, ComposeJobProgress, ComposeJobValue } from '../../commands/jobs.ts';
import type { Config } from '../../config/index.ts';
import { mallocAdvice } from '../../engine/allocator.ts';
import { nativeImageSize } from '../../engine/architecture.ts';
import { ClipTokenizer } from '../../engine/tokenizer/index.ts';
import { openCheckpoint } from '../../engine/weights/checkpoint.ts';
import { LoraCheckThread } from '../library/check-client.ts';
import { LoraLibrary } from '../library/index.ts';
import type { Logger } from '../log.ts';
import type { JobProcessor } from '../queue/index.ts';
import { StartProblem } from '../start-problem.ts';
import { EngineThread, engineOptions } from './engine-client.ts';
import { composeProcessor } from './processor.ts';

export type ComposeProcessor = JobProcessor<ComposeJobData, ComposeJobValue, ComposeJobProgress>;

export interface EngineHostOptions {
  log: Logger;
  /** run compositions in this process; without it the host only keeps the library (a bot whose workers compose) */
  compose: boolean;
  /** a MODEL_PATH that cannot be opened stops the start (a worker) instead of being reported (a bot) */
  requireModel?: boolean;
  /** wraps the job processor, e.g. to count and time its runs for /metrics */
  instrument?: (processor: ComposeProcessor) => ComposeProcessor;
}

export interface EngineHost {
  library: LoraLibrary;
  /** the model's tokenizer and own image side, when MODEL_PATH opens */
  model?: { tokenizer: ClipTokenizer; nativeSize: number };
  /** why MODEL_PATH cannot be used, when it is set */
  modelProblem?: string;
  /** the engine's thread, when this host composes and has a model */
  engine?: EngineThread;
  /** runs a queued composition on `engine` */
  processor?: ComposeProcessor;
  close(): Promise<void>;
}

export async function openEngineHost(config: Config, options: EngineHostOptions): Promise<EngineHost> {
  const { log } = options;
  const { modelPath, tokenizerDir, loraDir } = config.engine;
  let base: Parameters<typeof LoraLibrary.open>[1];
  let model: EngineHost['model'];
  let modelProblem: string | undefined;
  let modelError: unknown;
  if (modelPath) {
    try {
      const ck = openCheckpoint(modelPath, { tokenizerDir });
      base = { unet: ck.unet.weights, textEncoder: ck.textEncoder.weights };
      model = {
        tokenizer: ClipTokenizer.fromDir(ck.tokenizerDir),
        nativeSize: nativeImageSize(ck.unet.config, ck.vae.config),
      };
    } catch (e) {
      // A bot without Redis says this once as the model's status; a stack would add nothing.
      modelError = e;
      modelProblem = (e as Error).message;
    }
  }
  checkLoraDir(loraDir);
  if (modelError !== undefined && options.requireModel) throw modelError;
  if (modelProblem && !options.compose) log.warn(`MODEL_PATH cannot be used to check LoRAs: ${modelProblem}`);
  // Headers are read on this thread too, with or without a model to check against.
  const checks = new LoraCheckThread(base && modelPath ? { modelPath, tokenizerDir } : {});
  const library = await LoraLibrary.open(loraDir, base, {
    maxAddBytes: config.limits.loraUploadMaxMb * 1024 * 1024,
    checker: base ? checks.check : undefined,
    headerReader: checks.readHeader,
    onWarning: (m) => log.warn(m),
  });

  let engine: EngineThread | undefined;
  let processor: ComposeProcessor | undefined;
  if (options.compose && modelPath && !modelProblem) {
    const advice = mallocAdvice();
    if (advice) log.info(advice);
    engine = new EngineThread(engineOptions(config));
    const compose = composeProcessor(engine, library, {
      guidance: {
        iterations: config.engine.guidanceIterations,
        lossThreshold: config.engine.guidanceLossThreshold,
      },
    });
    processor = options.instrument ? options.instrument(compose) : compose;
  }
  return {
    library,
    model,
    modelProblem,
    engine,
    processor,
    async close() {
      await engine?.close();
      library.close();
      await checks.close();
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
