// LoRA header reads and checks on their own thread (check-thread.ts), for the library.

import type { Worker } from 'node:worker_threads';
import { startTsThread } from '../ts-thread.ts';
import type { CheckOutcome } from './check.ts';
import type { CheckReply, CheckRequest, CheckThreadData } from './check-thread.ts';
import type { HeaderOutcome } from './header.ts';

type Pending =
  | { kind: 'check'; resolve: (o: CheckOutcome) => void }
  | { kind: 'header'; resolve: (o: HeaderOutcome) => void };

export class LoraCheckThread {
  private readonly thread: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;

  constructor(model: CheckThreadData = {}) {
    this.thread = startTsThread(new URL('./check-thread.ts', import.meta.url), model);
    this.thread.on('message', (reply: CheckReply) => {
      const waiting = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      if (waiting?.kind === 'check' && reply.kind === 'check') waiting.resolve(reply.outcome);
      if (waiting?.kind === 'header' && reply.kind === 'header') waiting.resolve(reply.outcome);
      if (this.pending.size === 0) this.thread.unref();
    });
    // A thread that dies leaves its files unchecked rather than wrongly usable.
    const fail = (why: string) => {
      const reason = `could not be checked (${why})`;
      for (const [id, waiting] of this.pending) {
        if (waiting.kind === 'check') waiting.resolve({ check: { state: 'unusable', reason } });
        else waiting.resolve({ problem: reason });
        this.pending.delete(id);
      }
    };
    this.thread.on('error', (e: Error) => fail(e.message));
    this.thread.on('exit', (code) => fail(`the check thread stopped with code ${code}`));
    // Idle, the thread does not keep the process alive; a pending check does.
    this.thread.unref();
  }

  /** The full check against the model (the thread must have been given one). */
  readonly check = (path: string): Promise<CheckOutcome> =>
    new Promise((resolve) => this.send({ kind: 'check', resolve }, path));

  /** The file's safetensors header and what its key names say. */
  readonly readHeader = (path: string): Promise<HeaderOutcome> =>
    new Promise((resolve) => this.send({ kind: 'header', resolve }, path));

  async close(): Promise<void> {
    await this.thread.terminate();
  }

  private send(waiting: Pending, path: string): void {
    const id = this.nextId++;
    this.pending.set(id, waiting);
    this.thread.ref();
    this.thread.postMessage({ id, kind: waiting.kind, path } satisfies CheckRequest);
  }
}
