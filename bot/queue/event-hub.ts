// Typed listeners for queue events. A listener that throws (or rejects) is reported as a
// process warning instead of breaking the queue that called it.
import { redactText } from '../../config/redact.ts';
import type { QueueEvent, QueueEventType, QueueListener } from './types.ts';

export class EventHub<Progress> {
  readonly #listeners = new Map<QueueEventType, Set<(event: QueueEvent<Progress>) => void>>();

  on<T extends QueueEventType>(type: T, listener: QueueListener<Progress, T>): () => void {
    const set = this.#listeners.get(type) ?? new Set();
    this.#listeners.set(type, set);
    const wrapped = listener as (event: QueueEvent<Progress>) => void;
    set.add(wrapped);
    return () => set.delete(wrapped);
  }

  emit(event: QueueEvent<Progress>): void {
    for (const listener of this.#listeners.get(event.type) ?? []) {
      try {
        const returned: unknown = listener(event);
        if (returned instanceof Promise) returned.catch((e) => warn(event, e));
      } catch (e) {
        warn(event, e);
      }
    }
  }

  clear(): void {
    this.#listeners.clear();
  }
}

function warn(event: QueueEvent<unknown>, error: unknown): void {
  const message = error instanceof Error ? error.message : String(error);
  process.emitWarning(
    redactText(`queue ${event.type} listener for job ${event.id} failed: ${message}`),
    'QueueListenerWarning',
  );
}
