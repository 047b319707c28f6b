// Where the bot and its workers meet in Redis: URL, queue name and key prefix, and how
// their ioredis clients behave while Redis is away.
import { Redis } from 'ioredis';

export interface BullConnection {
  redisUrl: string;
  /** Bot and workers must use the same name; default `clora-jobs`. */
  queueName?: string;
  /** Prefix of every key; default `clora` (hash-tag it, e.g. `{clora}`, for Redis Cluster). */
  prefix?: string;
  /** Hears connection errors (the clients reconnect by themselves); default: ignored. */
  onError?: (error: Error) => void;
}

export const DEFAULT_QUEUE_NAME = 'clora-jobs';
export const DEFAULT_PREFIX = 'clora';

/**
 * A client for this queue. `waitForRedis`: commands wait through an outage (workers, and
 * BullMQ's blocking reads); otherwise they fail after about ten seconds of reconnecting, so
 * the bot can tell a user the queue is unavailable instead of hanging.
 */
export function openRedis(connection: BullConnection, waitForRedis: boolean): Redis {
  const redis = new Redis(connection.redisUrl, {
    maxRetriesPerRequest: waitForRedis ? null : 8,
    // Steady reconnects: back within two seconds of Redis returning (ioredis's default backs off to 5 s).
    retryStrategy: (attempt) => Math.min(attempt * 200, 2000),
    connectionName: 'clora',
  });
  redis.on('error', (error: Error) => connection.onError?.(error));
  return redis;
}

export function names(connection: BullConnection): { queueName: string; prefix: string } {
  return {
    queueName: connection.queueName ?? DEFAULT_QUEUE_NAME,
    prefix: connection.prefix ?? DEFAULT_PREFIX,
  };
}
