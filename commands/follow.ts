// Following one job for an adapter: every change of its state becomes the reply to show
// (queued → position, running → step x/y with a preview, then the image or the failure),
// with progress updates throttled to what a platform's rate limits allow.

import type { Reply } from './reply.ts';
import type { ComposeCommands, ComposeQueue } from './service.ts';

export interface FollowOptions {
  /** least time between two progress updates (Discord: ~1 s per message edit; Slack: ~1/s per channel) */
  minIntervalMs?: number;
  /** called with the final reply (result, failure or cancellation); the follow ends after it */
  onFinal?: (reply: Reply, state: 'completed' | 'failed' | 'cancelled') => void | Promise<void>;
}

export interface Following {
  stop(): void;
  /** settles after the final reply was delivered */
  done: Promise<void>;
}

export function followJob(
  queue: ComposeQueue,
  commands: ComposeCommands,
  jobId: string,
  onUpdate: (reply: Reply) => void | Promise<void>,
  options: FollowOptions = {},
): Following {
  const minInterval = options.minIntervalMs ?? 1000;
  let last = 0;
  let pending: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;
  let chain = Promise.resolve();
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => {
    resolveDone = r;
  });
  // Updates are delivered one at a time, in order, so an older edit never lands after a newer one.
  const deliver = (make: () => Promise<Reply>, final?: 'completed' | 'failed' | 'cancelled') => {
    chain = chain
      .then(async () => {
        if (stopped && !final) return;
        const reply = await make();
        if (final) await (options.onFinal ?? onUpdate)(reply, final);
        else await onUpdate(reply);
      })
      .catch(() => {});
    return chain;
  };
  const progress = () => {
    if (stopped || pending) return;
    const wait = Math.max(0, last + minInterval - Date.now());
    pending = setTimeout(() => {
      pending = undefined;
      last = Date.now();
      void deliver(() => commands.jobReply(jobId));
    }, wait);
  };
  const finish = (state: 'completed' | 'failed' | 'cancelled') => {
    if (stopped) return;
    stop();
    void deliver(() => commands.jobReply(jobId), state).then(resolveDone);
  };
  const offs = [
    queue.on('started', (e) => e.id === jobId && progress()),
    queue.on('progress', (e) => e.id === jobId && progress()),
    queue.on('completed', (e) => e.id === jobId && finish('completed')),
    queue.on('failed', (e) => e.id === jobId && finish('failed')),
    queue.on('cancelled', (e) => e.id === jobId && finish('cancelled')),
  ];
  function stop() {
    stopped = true;
    if (pending) clearTimeout(pending);
    pending = undefined;
    for (const off of offs) off();
  }
  // The job may have finished before we started listening.
  void queue.get(jobId).then((job) => {
    if (job && (job.state === 'completed' || job.state === 'failed' || job.state === 'cancelled'))
      finish(job.state);
  });
  return {
    stop: () => {
      stop();
      resolveDone();
    },
    done,
  };
}
