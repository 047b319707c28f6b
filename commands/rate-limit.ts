// The per-user rate limit every front end applies before a command or button does anything:
// a token bucket per user (`burst` at once, then `perSecond` on average), in a map that stays
// bounded however many users pass through it.

import { type MessageReply, userErrorReply } from './reply.ts';

export interface RateLimitOptions {
  /** commands a user may send in a burst */
  burst: number;
  /** how fast the burst refills, in commands per second */
  perSecond: number;
  /** most users remembered at once; default 10,000 */
  maxUsers?: number;
  now?: () => number;
}

export const DEFAULT_RATE_LIMIT: Readonly<RateLimitOptions> = Object.freeze({ burst: 5, perSecond: 0.5 });

const DEFAULT_MAX_USERS = 10_000;

export type RateDecision = { ok: true } | { ok: false; retryAfterMs: number; reply: MessageReply };

interface Bucket {
  tokens: number;
  at: number;
}

export class UserRateLimit {
  /** In order of last use, oldest first (a Map keeps insertion order; each take re-inserts). */
  private readonly buckets = new Map<string, Bucket>();
  private readonly now: () => number;
  private readonly maxUsers: number;

  private readonly options: RateLimitOptions;

  /** Every adapter builds its limiter here, so what it leaves out takes the same defaults. */
  constructor(options: Partial<RateLimitOptions> = {}) {
    this.options = { ...DEFAULT_RATE_LIMIT, ...options };
    this.now = options.now ?? Date.now;
    this.maxUsers = options.maxUsers ?? DEFAULT_MAX_USERS;
  }

  /** Users with state kept now. */
  get size(): number {
    return this.buckets.size;
  }

  /** Takes one of the user's tokens; when none is left, how long until one is, and a reply saying so. */
  take(userId: string): RateDecision {
    const now = this.now();
    const bucket = this.refilled(this.buckets.get(userId), now);
    this.buckets.delete(userId);
    this.buckets.set(userId, bucket);
    this.prune(now);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return { ok: true };
    }
    const retryAfterMs = Math.ceil(((1 - bucket.tokens) / this.options.perSecond) * 1000);
    return { ok: false, retryAfterMs, reply: slowDownReply(retryAfterMs) };
  }

  private refilled(bucket: Bucket | undefined, now: number): Bucket {
    const { burst, perSecond } = this.options;
    if (!bucket) return { tokens: burst, at: now };
    return { tokens: Math.min(burst, bucket.tokens + ((now - bucket.at) / 1000) * perSecond), at: now };
  }

  // A full bucket says nothing a fresh one would not; past the bound, the longest idle go first.
  // Pruning to 90% leaves room, so a busy map is not walked on every new user.
  private prune(now: number): void {
    if (this.buckets.size <= this.maxUsers) return;
    const keep = Math.max(1, Math.floor(this.maxUsers * 0.9));
    for (const [user, bucket] of this.buckets) {
      if (this.refilled(bucket, now).tokens >= this.options.burst) this.buckets.delete(user);
    }
    for (const user of this.buckets.keys()) {
      if (this.buckets.size <= keep) break;
      this.buckets.delete(user);
    }
  }
}

export function slowDownReply(retryAfterMs: number): MessageReply {
  const seconds = Math.max(1, Math.ceil(retryAfterMs / 1000));
  return userErrorReply(
    'Slow down: you are sending commands faster than this bot takes them.',
    `Try again in ${seconds} second${seconds === 1 ? '' : 's'}.`,
  );
}
