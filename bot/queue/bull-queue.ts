// BullQueue: the bot's side of the Redis queue. Jobs go to BullMQ for scheduling (priorities,
// locks, retries, stalled-job recovery); their records and results go to the JobStore; BullMQ's
// event stream, read by QueueEvents, tells the bot what the workers did.
import { randomUUID } from 'node:crypto';
import { Queue, QueueEvents } from 'bullmq';
import type { Redis } from 'ioredis';
import { admit, refusal } from './admission.ts';
import { type BullConnection, checkRedis, names, openRedis } from './bull-connection.ts';
import { estimateStartMs, RECENT_RUNS, typicalRunMs } from './estimate.ts';
import { EventHub } from './event-hub.ts';
import { JobStore } from './job-store.ts';
import {
  DEFAULT_RETRY,
  type EnqueueOptions,
  type EnqueueOutcome,
  type JobQueue,
  type JobRecord,
  type Json,
  type QueueEventType,
  type QueueListener,
  type QueuePosition,
  type QueueSettings,
} from './types.ts';

export interface BullQueueOptions extends BullConnection, QueueSettings {
  /**
   * Names this bot process for event replay: a restarted bot with the same name first hears
   * the events it missed while down (completions to deliver). Without it, only new events.
   */
  consumer?: string;
  /**
   * Hear no events until listen() is called, so the events a restarted bot replays (jobs that
   * ended while it was down) wait for the adapters that deliver them; default false.
   */
  holdEvents?: boolean;
}

/** BullMQ's own job name; the queue name says what the jobs are. */
const JOB_NAME = 'job';

export class BullQueue<Data, Result, Progress = Json> implements JobQueue<Data, Result, Progress> {
  readonly #hub = new EventHub<Progress>();
  /** Events are handled one at a time, in stream order. */
  #handling: Promise<void> = Promise.resolve();
  #closed = false;
  #listening = false;

  private constructor(
    private readonly options: BullQueueOptions,
    private readonly redis: Redis,
    private readonly eventsRedis: Redis,
    private readonly queue: Queue,
    private readonly store: JobStore,
    private readonly events: QueueEvents,
  ) {
    events.on('active', ({ jobId }, eventId) =>
      this.#handle(eventId, () => this.#emit({ type: 'started', id: jobId })),
    );
    events.on('progress', ({ jobId, data }, eventId) =>
      this.#handle(eventId, () => this.#emit({ type: 'progress', id: jobId, progress: data as Progress })),
    );
    events.on('completed', ({ jobId }, eventId) =>
      this.#handle(eventId, () => this.#emit({ type: 'completed', id: jobId })),
    );
    events.on('failed', ({ jobId, failedReason }, eventId) =>
      this.#handle(eventId, () => this.#finished(jobId, failedReason)),
    );
    events.on('removed', ({ jobId }, eventId) =>
      this.#handle(eventId, () => this.#finished(jobId, 'the job was removed from the queue')),
    );
  }

  static async open<Data, Result, Progress = Json>(
    options: BullQueueOptions,
  ): Promise<BullQueue<Data, Result, Progress>> {
    await checkRedis(options);
    const { queueName, prefix } = names(options);
    const redis = openRedis(options, false);
    const queue = new Queue(queueName, { connection: redis, prefix });
    queue.on('error', (error) => options.onError?.(error));
    const store = new JobStore(redis, queue.toKey('clora'), RECENT_RUNS);
    let eventsRedis: Redis | undefined;
    try {
      // Read from a known point, not '$': events between now and the first read must not be lost.
      const cursor =
        options.consumer === undefined ? null : await redis.get(cursorKey(store, options.consumer));
      const latest = await redis.xrevrange(queue.keys.events, '+', '-', 'COUNT', 1);
      eventsRedis = openRedis(options, true);
      const events = new QueueEvents(queueName, {
        connection: eventsRedis,
        prefix,
        lastEventId: cursor ?? latest[0]?.[0] ?? '0',
        autorun: !options.holdEvents,
      });
      events.on('error', (error) => options.onError?.(error));
      await Promise.all([queue.waitUntilReady(), events.waitUntilReady()]);
      return new BullQueue(options, redis, eventsRedis, queue, store, events);
    } catch (error) {
      await queue.close().catch(() => undefined);
      redis.disconnect();
      eventsRedis?.disconnect();
      throw error;
    }
  }

  async enqueue(data: Data, options: EnqueueOptions): Promise<EnqueueOutcome> {
    if (this.#closed) throw new Error('the queue is closed');
    const admission = admit(data, options);
    const id = randomUUID();
    const verdict = await this.store.admit(
      { id, ...admission, ttlMs: this.options.resultTtlMs, enqueuedAt: Date.now() },
      this.options.limits,
      this.queue.toKey(''),
    );
    if (verdict === 'user-limit') return refusal(verdict, this.options.limits.perUser);
    if (verdict === 'scope-cap') return refusal(verdict, this.options.limits.perScope);
    const retry = this.options.retry ?? DEFAULT_RETRY;
    try {
      await this.queue.add(
        JOB_NAME,
        {},
        {
          jobId: id,
          priority: admission.priority,
          attempts: retry.attempts,
          backoff: { type: 'exponential', delay: retry.backoffMs },
          // The JobStore keeps what outlives the run.
          removeOnComplete: true,
          removeOnFail: true,
        },
      );
    } catch (error) {
      await this.store
        .settle(id, { target: 'failed', error: { message: 'the job could not be queued', kind: 'internal' } })
        .catch(() => undefined);
      throw error;
    }
    return { ok: true, id };
  }

  async cancel(id: string): Promise<boolean> {
    if (!(await this.store.requestCancel(id))) return false;
    // remove() refuses a job a worker holds; that worker hears the cancel channel instead.
    if ((await this.queue.remove(id)) === 1) await this.store.settle(id, { target: 'cancelled' });
    else await this.redis.publish(this.store.cancelChannel, id);
    return true;
  }

  get(id: string): Promise<JobRecord<Data, Result, Progress> | undefined> {
    return this.store.read<Data, Result, Progress>(id);
  }

  setDelivery(id: string, delivery: { [key: string]: Json }): Promise<boolean> {
    return this.store.setDelivery(id, JSON.stringify(delivery));
  }

  claimDelivery(id: string): Promise<boolean> {
    return this.store.claimDelivery(id);
  }

  async position(id: string): Promise<QueuePosition | undefined> {
    const [waiting, active, recent] = await Promise.all([
      this.queue.getRanges(['wait', 'prioritized'], 0, -1, true),
      this.queue.getRanges(['active'], 0, -1),
      this.store.recentRunsMs(),
    ]);
    let ahead = waiting.indexOf(id);
    if (ahead < 0) {
      const state = await this.store.state(id);
      if (state === 'running' && active.includes(id)) return { position: 0, etaMs: 0 };
      if (state !== 'queued' && state !== 'running') return undefined;
      // Waiting for a retry (or just recovered from a dead worker): behind the queue as it stands.
      ahead = waiting.length;
    }
    const now = Date.now();
    const elapsed = (await this.store.startedAt(active)).map((t) => now - (t ?? now));
    // Workers announce no capacity; those busy now are the best guess (at least one).
    const etaMs = estimateStartMs(ahead, elapsed, Math.max(1, active.length), typicalRunMs(recent));
    return etaMs === undefined ? { position: ahead + 1 } : { position: ahead + 1, etaMs };
  }

  on<T extends QueueEventType>(type: T, listener: QueueListener<Progress, T>): () => void {
    return this.#hub.on(type, listener);
  }

  /** Starts hearing events held back by `holdEvents`, the missed ones first. */
  listen(): void {
    if (!this.options.holdEvents || this.#listening || this.#closed) return;
    this.#listening = true;
    this.events.run().catch((error: Error) => this.options.onError?.(error));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.events.close();
    await this.#handling;
    await this.queue.close();
    this.#hub.clear();
    await Promise.all([this.redis.quit(), this.eventsRedis.quit()]).catch(() => undefined);
  }

  #emit(event: Parameters<EventHub<Progress>['emit']>[0]): void {
    if (!this.#closed) this.#hub.emit(event);
  }

  #handle(eventId: string, handler: () => void | Promise<void>): void {
    const consumer = this.options.consumer;
    this.#handling = this.#handling
      .then(handler)
      .then(() =>
        consumer === undefined ? undefined : this.redis.set(cursorKey(this.store, consumer), eventId),
      )
      .then(
        () => undefined,
        (error: Error) => this.options.onError?.(error),
      );
  }

  /** BullMQ says the job ended without completing: settle the record if no worker did, and tell listeners how it ended. */
  async #finished(id: string, reason: string): Promise<void> {
    const state = await this.store.settle(id, {
      target: 'failed',
      error: { message: reason, kind: 'internal' },
    });
    if (state === 'cancelled') this.#emit({ type: 'cancelled', id });
    else if (state === 'failed' || state === 'missing') {
      const record = state === 'failed' ? await this.store.read(id) : undefined;
      this.#emit({ type: 'failed', id, error: record?.error ?? { message: reason, kind: 'internal' } });
    }
  }
}

function cursorKey(store: JobStore, consumer: string): string {
  return `${store.base}:cursor:${consumer}`;
}
