// Slack takes about one message a second per channel (chat.postMessage's special limit), so
// everything the bot writes to a channel waits its turn here: posts, edits and file shares,
// each starting at least `intervalMs` after the previous one finished. A waiting edit of a
// message is replaced by a newer edit of it.

interface Waiter {
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

interface Task {
  key?: string;
  send: () => Promise<unknown>;
  waiters: Waiter[];
}

interface Lane {
  tasks: Task[];
  last: number;
  running: boolean;
}

export class ChannelPacer {
  private readonly lanes = new Map<string, Lane>();
  private closed = false;

  constructor(readonly intervalMs = 1000) {}

  /**
   * Runs `send` in `channel`'s turn. With a `key`, a task with the same key that is still
   * waiting is replaced: both callers get the newer task's result.
   */
  run<T>(channel: string, send: () => Promise<T>, key?: string): Promise<T> {
    if (this.closed) return Promise.reject(new Error('the Slack adapter is stopping'));
    let lane = this.lanes.get(channel);
    if (!lane) {
      lane = { tasks: [], last: 0, running: false };
      this.lanes.set(channel, lane);
    }
    return new Promise<T>((resolve, reject) => {
      const waiter = { resolve: resolve as (v: unknown) => void, reject };
      const waiting = key === undefined ? undefined : lane.tasks.find((t) => t.key === key);
      if (waiting) {
        waiting.send = send;
        waiting.waiters.push(waiter);
      } else {
        lane.tasks.push({ key, send, waiters: [waiter] });
      }
      if (!lane.running) void this.drain(channel, lane);
    });
  }

  /** Tasks still waiting in `channel`. */
  waiting(channel: string): number {
    return this.lanes.get(channel)?.tasks.length ?? 0;
  }

  /** Refuses new tasks and fails the waiting ones. */
  close(): void {
    this.closed = true;
    for (const lane of this.lanes.values()) {
      for (const task of lane.tasks.splice(0))
        for (const w of task.waiters) w.reject(new Error('the Slack adapter stopped'));
    }
  }

  private async drain(channel: string, lane: Lane): Promise<void> {
    lane.running = true;
    while (lane.tasks.length > 0) {
      const wait = lane.last + this.intervalMs - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const task = lane.tasks.shift();
      if (!task) break;
      try {
        const value = await task.send();
        for (const w of task.waiters) w.resolve(value);
      } catch (e) {
        for (const w of task.waiters) w.reject(e);
      }
      // Counted from the end: a file share posts its message at the end of a multi-call upload.
      lane.last = Date.now();
    }
    lane.running = false;
    // An idle lane is dropped once its interval has passed, so channels seen once do not pile up.
    setTimeout(() => {
      if (!lane.running && lane.tasks.length === 0 && this.lanes.get(channel) === lane)
        this.lanes.delete(channel);
    }, this.intervalMs).unref();
  }
}
