// LoRA checks on their own thread (check-thread.ts), as a `checker` for the library.

import type { Worker } from 'node:worker_threads';
import { startTsThread } from '../worker/ts-thread.ts';
import type { CheckOutcome } from './check.ts';
import type { CheckReply, CheckThreadData } from './check-thread.ts';

export class LoraCheckThread {
  private readonly worker: Worker;
  private readonly pending = new Map<number, (o: CheckOutcome) => void>();
  private nextId = 1;

  constructor(model: CheckThreadData) {
    this.worker = startTsThread(new URL('./check-thread.ts', import.meta.url), model);
    this.worker.on('message', ({ id, outcome }: CheckReply) => {
      this.pending.get(id)?.(outcome);
      this.pending.delete(id);
      if (this.pending.size === 0) this.worker.unref();
    });
    // A thread that dies leaves its files unchecked rather than wrongly usable.
    const fail = (why: string) => {
      for (const [id, resolve] of this.pending) {
        resolve({ check: { state: 'unusable', reason: `could not be checked (${why})` } });
        this.pending.delete(id);
      }
    };
    this.worker.on('error', (e: Error) => fail(e.message));
    this.worker.on('exit', (code) => fail(`the check thread stopped with code ${code}`));
    // Idle, the thread does not keep the process alive; a pending check does.
    this.worker.unref();
  }

  readonly check = (path: string): Promise<CheckOutcome> =>
    new Promise((resolve) => {
      const id = this.nextId++;
      this.pending.set(id, resolve);
      this.worker.ref();
      this.worker.postMessage({ id, path });
    });

  async close(): Promise<void> {
    await this.worker.terminate();
  }
}
