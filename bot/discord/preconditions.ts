// Who may do what, checked on our side whatever Discord's client shows: library admins (Manage
// Server, Administrator or the configured role) and a per-user rate limit on every command and button.

import { type BaseInteraction, GuildMember, PermissionFlagsBits } from 'discord.js';
import { type MessageReply, userErrorReply } from '../../commands/reply.ts';

/** May manage the LoRA library and cancel anyone's job. */
export function isAdmin(interaction: BaseInteraction, adminRole: string | undefined): boolean {
  if (!interaction.inGuild()) return false;
  // has() counts Administrator as holding every permission.
  if (interaction.memberPermissions?.has(PermissionFlagsBits.ManageGuild)) return true;
  if (!adminRole) return false;
  const member = interaction.member;
  const roleIds = member instanceof GuildMember ? [...member.roles.cache.keys()] : (member?.roles ?? []);
  if (roleIds.includes(adminRole)) return true;
  // DISCORD_ADMIN_ROLE may be a role's name; names come from the guild the gateway sent us.
  const wanted = adminRole.trim().toLowerCase();
  return roleIds.some((id) => interaction.guild?.roles.cache.get(id)?.name.toLowerCase() === wanted);
}

export function adminOnlyReply(adminRole: string | undefined): MessageReply {
  return userErrorReply(
    'Only library admins can add LoRAs.',
    adminRole
      ? `Ask someone with Manage Server or the '${adminRole}' role to add it.`
      : 'Ask someone with the Manage Server permission to add it.',
  );
}

export interface RateLimitOptions {
  /** commands a user may send in a burst */
  burst: number;
  /** how fast the burst refills, in commands per second */
  perSecond: number;
  now?: () => number;
}

export const DEFAULT_RATE_LIMIT: RateLimitOptions = { burst: 5, perSecond: 0.5 };

/** A token bucket per user: `burst` commands at once, then `perSecond` on average. */
export class UserRateLimit {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly now: () => number;

  constructor(private readonly options: RateLimitOptions = DEFAULT_RATE_LIMIT) {
    this.now = options.now ?? Date.now;
  }

  /** Takes one token; when none is left, how long until one is. */
  take(userId: string): { ok: true } | { ok: false; retryAfterMs: number } {
    const now = this.now();
    const { burst, perSecond } = this.options;
    const bucket = this.buckets.get(userId) ?? { tokens: burst, at: now };
    bucket.tokens = Math.min(burst, bucket.tokens + ((now - bucket.at) / 1000) * perSecond);
    bucket.at = now;
    this.buckets.set(userId, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return { ok: true };
    }
    this.forgetFull(now);
    return { ok: false, retryAfterMs: Math.ceil(((1 - bucket.tokens) / perSecond) * 1000) };
  }

  // Full buckets say nothing a fresh one would not: drop them so the map stays small.
  private forgetFull(now: number): void {
    if (this.buckets.size < 10_000) return;
    for (const [user, b] of this.buckets) {
      if (b.tokens + ((now - b.at) / 1000) * this.options.perSecond >= this.options.burst)
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
