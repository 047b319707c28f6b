// The queue's job processor: a composition request becomes an engine spec (LoRA names
// resolved in this host's library), runs on the engine thread with progress and
// cancellation, and leaves the image, masks and maps as the job's blobs.

import {
  BLOB,
  type ComposeJobData,
  type ComposeJobProgress,
  type ComposeJobValue,
} from '../../commands/jobs.ts';
import { recipeCommand } from '../../commands/remix.ts';
import type { LoraLibrary } from '../library/index.ts';
import { type JobProcessor, UserError } from '../queue/index.ts';
import type { EngineThread } from './engine-client.ts';
import { specFromRequest } from './spec.ts';

export interface ProcessorOptions {
  /** largest picture the chat platforms will take */
  maxBytes?: number;
  /** operator settings for CLoRA's iterative bursts */
  guidance?: { iterations?: number; lossThreshold?: number };
}

export function composeProcessor(
  engine: EngineThread,
  library: Pick<LoraLibrary, 'get'>,
  options: ProcessorOptions = {},
): JobProcessor<ComposeJobData, ComposeJobValue, ComposeJobProgress> {
  return async (job) => {
    const started = performance.now();
    const { request, loraHashes } = job.data;
    const spec = specFromRequest(
      request,
      (name) => {
        const entry = library.get(name);
        if (!entry)
          throw new UserError(`the LoRA '${name}' is not in this worker's library; add it to LORA_DIR`);
        if (entry.check.state === 'unusable')
          throw new UserError(`the LoRA '${name}' cannot be used: ${entry.check.reason} (see /lora ${name})`);
        const want = loraHashes?.[name];
        if (want && entry.sha256 && want !== entry.sha256) {
          throw new UserError(
            `this worker's '${name}' is a different file than the bot's; sync LORA_DIR across hosts`,
          );
        }
        return { ref: entry.ref, triggers: [...entry.triggers] };
      },
      {},
      request.width === null || request.height === null ? await engine.defaultSize() : undefined,
    );
    if (options.guidance?.iterations !== undefined) spec.guidance.iterations = options.guidance.iterations;
    if (options.guidance?.lossThreshold !== undefined)
      spec.guidance.lossThreshold = options.guidance.lossThreshold;
    const outcome = await engine.compose(spec, {
      signal: job.signal,
      maxBytes: options.maxBytes,
      // the size used, so the recipe reproduces the picture on a model of another size too
      command: recipeCommand({ ...request, width: spec.width, height: spec.height }),
      onProgress: (p) => void job.progress(p),
    });
    const blobs: Record<string, Uint8Array> = {};
    const pictures: Record<string, string> = {};
    for (const [name, picture] of Object.entries(outcome.pictures)) {
      const blob = name === 'image' ? BLOB.image : name === 'masks' ? BLOB.masks : BLOB.maps;
      blobs[blob] = picture.bytes;
      pictures[blob] = picture.mime;
    }
    const s = outcome.summary;
    const value: ComposeJobValue = {
      seed: s.seed,
      prompts: s.prompts,
      width: s.width,
      height: s.height,
      method: s.method,
      elapsedMs: performance.now() - started,
      timings: s.timings,
      pictures,
      ...(s.loss ? { loss: s.loss } : {}),
      ...(s.maskShares ? { maskShares: s.maskShares } : {}),
    };
    return { value, blobs };
  };
}
