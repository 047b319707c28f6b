// The engine's own thread: onnxruntime's run holds the JS thread for the length of a UNet
// pass, so compositions run here and the bot's (or worker's) event loop stays free for
// chat traffic, queue locks and heartbeats. Messages in: compose, cancel. Out: ready,
// progress, done, failed.

import { parentPort, workerData } from 'node:worker_threads';
import { Engine, type EngineOptions } from '../../engine/clora/engine.ts';
import type { Progress } from '../../engine/clora/pipeline.ts';
import type { CompositionSpec } from '../../engine/clora/spec.ts';
import { CancelledError } from '../../engine/errors.ts';
import { maskSet, renderComposition } from '../render/composition.ts';
import { latentPreview, ownershipShares } from '../render/index.ts';
import { threadData } from '../ts-thread.ts';
import { classifyError, type ThreadProgress, type ThreadReply, type ThreadRequest } from './messages.ts';
import { compositionRecipe } from './recipe.ts';

const port = parentPort;
if (!port) throw new Error('engine-thread.ts runs on a thread of its own (startTsThread)');

const options = threadData<EngineOptions & { previewEveryMs?: number }>(workerData);
const controllers = new Map<number, AbortController>();

async function compose(id: number, spec: CompositionSpec, maxBytes: number, command?: string): Promise<void> {
  const controller = new AbortController();
  controllers.set(id, controller);
  let lastPreview = 0;
  let previews = 0; // previews started; one that finishes after a newer one started is dropped
  let latest: ThreadProgress | undefined;
  try {
    const engine = await loading;
    const h = spec.height / 8;
    const w = spec.width / 8;
    const result = await engine.compose(spec, {
      signal: controller.signal,
      onProgress: (p: Progress) => {
        const now = performance.now();
        const wantPreview =
          p.latent && p.phase === 'denoise' && now - lastPreview > (options.previewEveryMs ?? 2000);
        const progress = {
          phase: p.phase,
          step: p.step,
          steps: p.steps,
          iteration: p.iteration,
          loss: p.loss,
          etaMs: p.etaMs,
        };
        post({ type: 'progress', id, progress });
        latest = progress;
        if (!wantPreview) return;
        lastPreview = now;
        const seq = ++previews;
        latentPreview(p.latent!.slice(), h, w, { maxBytes: 48 * 1024 })
          .then((img) => {
            // The next UNet run holds this thread while the preview encodes, so progress has
            // moved on by now: send the preview with the newest numbers rather than drop it.
            if (seq === previews)
              post({
                type: 'progress',
                id,
                progress: { ...(latest ?? progress), preview: Buffer.from(img.bytes).toString('base64') },
              });
          })
          .catch(() => {});
      },
    });
    const recipe = command === undefined ? undefined : await compositionRecipe(engine, result.spec, command);
    const pictures = await renderComposition(result, { masks: true, maps: true, maxBytes, recipe });
    // The same shares as the overlay's legend: overlapping cells split between their LoRAs, adding up to 1.
    const masks = maskSet(result);
    const shares = masks && ownershipShares(masks);
    const maskShares =
      masks && shares
        ? [
            ...masks.loras.map((l, i) => ({ name: l.name, share: shares.loras[i]! })),
            { name: 'background', share: shares.background },
          ]
        : undefined;
    const losses = result.losses;
    post({
      type: 'done',
      id,
      summary: {
        seed: spec.seed,
        prompts: result.prompts,
        width: result.width,
        height: result.height,
        method: spec.method,
        timings: result.timings,
        loss: losses.length
          ? { first: losses[0].loss, last: losses[losses.length - 1].loss, updates: losses.length }
          : undefined,
        maskShares,
      },
      pictures: Object.fromEntries(
        Object.entries(pictures).map(([k, v]) => [k, { bytes: new Uint8Array(v.bytes), mime: v.mime }]),
      ),
    });
  } catch (e) {
    if (e instanceof CancelledError || controller.signal.aborted)
      post({ type: 'failed', id, kind: 'cancelled', message: 'cancelled' });
    else post({ type: 'failed', id, ...classifyError(e) });
  } finally {
    controllers.delete(id);
  }
}

function post(message: ThreadReply): void {
  const transfer: ArrayBuffer[] = [];
  if (message.type === 'done')
    for (const p of Object.values(message.pictures)) transfer.push(p.bytes.buffer as ArrayBuffer);
  port!.postMessage(message, transfer);
}

const loading = Engine.load(options);
loading.then(
  (engine) => post({ type: 'ready', load: engine.loadTimings, defaultSize: engine.defaultSize }),
  (e: unknown) => post({ type: 'load-failed', ...classifyError(e) }),
);

port.on('message', (message: ThreadRequest) => {
  if (message.type === 'compose') void compose(message.id, message.spec, message.maxBytes, message.command);
  else if (message.type === 'cancel') controllers.get(message.id)?.abort();
  else if (message.type === 'close') {
    void loading.then((e) => e.close()).finally(() => process.exit(0));
  }
});
