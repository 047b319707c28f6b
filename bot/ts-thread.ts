// Starts a thread (node:worker_threads) running one of our modules, with `data` as its
// workerData.data: from source through tsx, or, when this file itself runs from the build, the
// module's built JavaScript.

import { Worker } from 'node:worker_threads';

const fromBuild = import.meta.url.endsWith('.js');

export function startTsThread(entry: URL, data: unknown): Worker {
  // tsc rewrites import specifiers, not URLs: a built caller still names its thread's .ts source.
  if (fromBuild) return new Worker(new URL(entry.href.replace(/\.ts$/, '.js')), { workerData: { data } });
  return new Worker(new URL('./ts-thread.mjs', import.meta.url), { workerData: { entry: entry.href, data } });
}

/** Inside such a thread: the data its creator passed. */
export function threadData<T>(workerData: { data: T }): T {
  return workerData.data;
}
