// Checks that run before a command or button does anything: a per-user rate limit, and
// whether a user is a workspace admin, asked of Slack (users.info) rather than taken from
// anything the request carries.

import type { webApi } from '@slack/bolt';
import { type MessageReply, userErrorReply } from '../../commands/reply.ts';
import type { Logger } from '../log.ts';

export interface RateLimit {
  /** requests one user may make per window */
  requests: number;
  windowMs: number;
}

export const DEFAULT_RATE_LIMIT: RateLimit = { requests: 20, windowMs: 60_000 };

/** A sliding-window count of each user's recent requests. */
export class UserRateLimiter {
  private readonly seen = new Map<string, number[]>();

  constructor(
    readonly limit: RateLimit = DEFAULT_RATE_LIMIT,
    private readonly now: () => number = Date.now,
  ) {}

  /** Counts a request; a refusal says when to try again. */
  take(userId: string): { ok: true } | { ok: false; reply: MessageReply } {
    const now = this.now();
    const recent = (this.seen.get(userId) ?? []).filter((t) => t > now - this.limit.windowMs);
    if (recent.length >= this.limit.requests) {
      this.seen.set(userId, recent);
      const wait = Math.max(1, Math.ceil((recent[0] + this.limit.windowMs - now) / 1000));
      return {
        ok: false,
        reply: userErrorReply(
          `That's more than ${this.limit.requests} requests in ${Math.round(this.limit.windowMs / 1000)} s.`,
          `Try again in ${wait} s.`,
        ),
      };
    }
    recent.push(now);
    this.seen.set(userId, recent);
    // Forget users idle for a whole window so the map stays small.
    if (this.seen.size > 10_000) {
      for (const [id, times] of this.seen)
        if (times.every((t) => t <= now - this.limit.windowMs)) this.seen.delete(id);
    }
    return { ok: true };
  }
}

const ADMIN_CACHE_MS = 5 * 60_000;

/** Workspace admins and owners, as users.info reports them, remembered for a few minutes. */
export class AdminCheck {
  private readonly known = new Map<string, { admin: boolean; until: number }>();

  constructor(
    private readonly client: webApi.WebClient,
    private readonly log: Logger,
  ) {}

  async isAdmin(userId: string): Promise<boolean> {
    const cached = this.known.get(userId);
    if (cached && cached.until > Date.now()) return cached.admin;
    try {
      const { user } = await this.client.users.info({ user: userId });
      const admin = Boolean(user?.is_admin || user?.is_owner || user?.is_primary_owner);
      this.known.set(userId, { admin, until: Date.now() + ADMIN_CACHE_MS });
      return admin;
    } catch (e) {
      // Without an answer nobody gets admin rights.
      this.log.warn(`users.info for ${userId} failed: ${(e as Error).message}`);
      return false;
    }
  }
}
