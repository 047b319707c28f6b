// Starts a worker thread running a TypeScript module, with `data` as its workerData.data.

import { Worker } from 'node:worker_threads';

export function startTsThread(entry: URL, data: unknown): Worker {
  return new Worker(new URL('./ts-thread.mjs', import.meta.url), { workerData: { entry: entry.href, data } });
}

/** Inside such a thread: the data its creator passed. */
export function threadData<T>(workerData: { data: T }): T {
  return workerData.data;
}
