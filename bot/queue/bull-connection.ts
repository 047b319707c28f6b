// Where the bot and its workers meet in Redis: URL, queue name and key prefix, and how
// their ioredis clients behave while Redis is away.
import { Redis } from 'ioredis';
import { StartProblem } from '../start-problem.ts';

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

/**
 * Connects once to check the URL before the queue opens: Redis must answer, and must have the
 * database the URL names (ioredis would report the refusal as an event and carry on in
 * database 0, beside other applications' keys).
 */
export async function checkRedis(connection: BullConnection): Promise<void> {
  const where = redisAddress(connection.redisUrl);
  const wanted = Number(new Redis(connection.redisUrl, { lazyConnect: true }).options.db ?? 0);
  const probe = new Redis(connection.redisUrl, {
    lazyConnect: true,
    db: 0,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: 10_000,
    connectionName: 'clora-check',
  });
  // Failures are answered below, as the promise of each step.
  probe.on('error', () => undefined);
  try {
    try {
      await probe.connect();
    } catch (e) {
      throw new StartProblem(`REDIS_URL: cannot reach Redis at ${where} (${(e as Error).message})`);
    }
    try {
      await probe.select(wanted);
    } catch (e) {
      const count = await databaseCount(probe);
      throw new StartProblem(
        `REDIS_URL names database ${wanted}, which the Redis at ${where} refuses (${(e as Error).message})${count === undefined ? '' : `; it has databases 0 to ${count - 1}`}`,
      );
    }
  } finally {
    probe.disconnect();
  }
}

/** host:port of a Redis URL, without its credentials. */
function redisAddress(url: string): string {
  const parsed = new URL(url);
  return `${parsed.hostname}:${parsed.port || '6379'}`;
}

/** CONFIG GET databases, where the server allows it (managed Redis often does not). */
async function databaseCount(redis: Redis): Promise<number | undefined> {
  try {
    const reply = (await redis.config('GET', 'databases')) as string[];
    const count = Number(reply[1]);
    return Number.isInteger(count) && count > 0 ? count : undefined;
  } catch {
    return undefined;
  }
}
