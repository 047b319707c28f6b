// Runs the engine on its own thread and talks to it: start, compose (with progress and
// cancellation), close. A thread that dies (out of memory, a native crash) fails its job
// as an engine fault, which the queue retries, and is started again for the next one.

import type { Worker } from 'node:worker_threads';
import type { Config } from '../../config/index.ts';
import type { EngineOptions, LoadTimings } from '../../engine/clora/engine.ts';
import type { CompositionSpec } from '../../engine/clora/spec.ts';
import { startTsThread } from '../ts-thread.ts';
import {
  type CompositionSummary,
  EngineJobError,
  type ErrorKind,
  errorFromThread,
  type ThreadProgress,
  type ThreadReply,
  type ThreadRequest,
} from './messages.ts';

/** The engine's settings from the configuration (MODEL_PATH must be set). */
export function engineOptions(config: Config): EngineOptions {
  const { engine, limits } = config;
  if (!engine.modelPath) throw new Error('MODEL_PATH is not set');
  return {
    modelPath: engine.modelPath,
    tokenizerDir: engine.tokenizerDir,
    provider: engine.device,
    dtype: engine.dtype,
    threads: engine.threads,
    optimization: engine.optimization,
    attention: engine.attention,
    prepackWeights: engine.prepackWeights,
    clipSkip: engine.clipSkip,
    cacheDir: engine.cacheDir,
    memoryBudgetBytes: engine.memoryBudgetMb === undefined ? undefined : engine.memoryBudgetMb * 1024 ** 2,
    limits: { maxLoras: limits.maxLoras, maxSteps: limits.maxSteps, maxSize: limits.maxSize },
  };
}

export interface ComposeOutcome {
  summary: CompositionSummary;
  pictures: Record<string, { bytes: Uint8Array; mime: string }>;
}

interface Pending {
  resolve: (o: ComposeOutcome) => void;
  reject: (e: Error) => void;
  onProgress?: (p: ThreadProgress) => void;
}

export type EngineState =
  | { state: 'loading' }
  | { state: 'ready'; load: LoadTimings; defaultSize: number }
  | { state: 'failed'; kind: ErrorKind; message: string };

export class EngineThread {
  private thread!: Worker;
  private readyPromise!: Promise<LoadTimings>;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closing = false;
  status: EngineState = { state: 'loading' };

  constructor(private readonly options: EngineOptions & { previewEveryMs?: number }) {
    this.spawn();
  }

  /** Resolves when the model is loaded; rejects with the reason it could not be. */
  ready(): Promise<LoadTimings> {
    return this.readyPromise;
  }

  /** The side of a request that leaves its size to the model: the model's own, capped by MAX_SIZE. */
  async defaultSize(): Promise<number> {
    await this.readyPromise;
    if (this.status.state !== 'ready') throw new EngineJobError('internal', 'the engine is not ready');
    return this.status.defaultSize;
  }

  compose(
    spec: CompositionSpec,
    opts: {
      signal?: AbortSignal;
      onProgress?: (p: ThreadProgress) => void;
      maxBytes?: number;
      /** the /compose command the pictures carry in their recipe */
      command?: string;
    } = {},
  ): Promise<ComposeOutcome> {
    return this.readyPromise.then(
      () =>
        new Promise<ComposeOutcome>((resolve, reject) => {
          const id = this.nextId++;
          this.pending.set(id, { resolve, reject, onProgress: opts.onProgress });
          const cancel = () => this.send({ type: 'cancel', id });
          if (opts.signal?.aborted) cancel();
          opts.signal?.addEventListener('abort', cancel, { once: true });
          this.send({
            type: 'compose',
            id,
            spec,
            maxBytes: opts.maxBytes ?? 10 * 1024 * 1024,
            ...(opts.command ? { command: opts.command } : {}),
          });
        }),
    );
  }

  async close(): Promise<void> {
    this.closing = true;
    const exited = new Promise<void>((resolve) => this.thread.once('exit', () => resolve()));
    this.send({ type: 'close' });
    const timer = setTimeout(() => void this.thread.terminate(), 10_000);
    await exited;
    clearTimeout(timer);
  }

  private send(message: ThreadRequest): void {
    this.thread.postMessage(message);
  }

  private spawn(): void {
    this.status = { state: 'loading' };
    this.thread = startTsThread(new URL('./engine-thread.ts', import.meta.url), this.options);
    this.readyPromise = new Promise<LoadTimings>((resolve, reject) => {
      this.thread.on('message', (m: ThreadReply) => {
        if (m.type === 'ready') {
          this.status = { state: 'ready', load: m.load, defaultSize: m.defaultSize };
          resolve(m.load);
        } else if (m.type === 'load-failed') {
          this.status = { state: 'failed', kind: m.kind, message: m.message };
          reject(errorFromThread(m.kind, m.message));
        } else this.onJobMessage(m);
      });
      this.thread.on('error', (e: Error) => {
        this.status = { state: 'failed', kind: 'internal', message: e.message };
        reject(e);
        this.failAll(new EngineJobError('internal', `the engine thread crashed: ${e.message}`));
      });
      this.thread.on('exit', (code) => {
        this.failAll(new EngineJobError('internal', `the engine thread stopped (exit code ${code})`));
        if (!this.closing && this.status.state === 'ready') this.spawn();
      });
    });
    this.readyPromise.catch(() => {});
  }

  private onJobMessage(m: Exclude<ThreadReply, { type: 'ready' | 'load-failed' }>): void {
    const job = this.pending.get(m.id);
    if (!job) return;
    if (m.type === 'progress') job.onProgress?.(m.progress);
    else if (m.type === 'done') {
      this.pending.delete(m.id);
      job.resolve({ summary: m.summary, pictures: m.pictures });
    } else {
      this.pending.delete(m.id);
      job.reject(errorFromThread(m.kind, m.message));
    }
  }

  private failAll(error: Error): void {
    for (const [id, job] of this.pending) {
      this.pending.delete(id);
      job.reject(error);
    }
  }
}
