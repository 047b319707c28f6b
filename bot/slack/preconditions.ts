// Whether a user is a workspace admin, asked of Slack (users.info) rather than taken from
// anything the request carries. The per-user rate limit is commands/rate-limit.ts.

import type { webApi } from '@slack/bolt';
import type { Logger } from '../log.ts';

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
