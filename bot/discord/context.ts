// What every handler gets: the app, the Discord client and the adapter's parts, and the
// platform-neutral ChatContext of the user behind an interaction.

import type { BaseInteraction, Client } from 'discord.js';
import { type ComposeLimits, composeSettingsOf } from '../../commands/compose/index.ts';
import type { UserRateLimit } from '../../commands/rate-limit.ts';
import type { ChatContext } from '../../commands/service.ts';
import type { Config, DiscordConfig } from '../../config/index.ts';
import type { App } from '../app.ts';
import type { Logger } from '../log.ts';
import { discordAttachmentLimit } from '../render/index.ts';
import { type JobDelivery, originMessage, type ReplyTarget } from './delivery.ts';
import { isAdmin } from './preconditions.ts';

/** The ranges the slash command definitions announce (the commands re-check them all). */
export interface CommandLimits extends ComposeLimits {
  /** largest `/lora add` upload, in bytes */
  loraUploadBytes: number;
}

/** The limits as the app applies them (composeSettingsOf, the one rule every front end reads). */
export function commandLimits(config: Config): CommandLimits {
  const { limits } = composeSettingsOf(config.limits);
  return { ...limits, loraUploadBytes: config.limits.loraUploadMaxMb * 1024 * 1024 };
}

export interface DiscordDeps {
  app: App;
  config: DiscordConfig;
  client: Client<true>;
  delivery: JobDelivery;
  limits: CommandLimits;
  rateLimit: UserRateLimit;
  log: Logger;
  now: () => number;
}

export function replyTarget(interaction: BaseInteraction, deps: Pick<DiscordDeps, 'now'>): ReplyTarget {
  return {
    applicationId: interaction.applicationId,
    token: interaction.token,
    // Our clock rather than the snowflake's, so a skewed host clock cannot stretch the token's life.
    issuedAt: deps.now(),
    channelId: interaction.channelId ?? '',
    userId: interaction.user.id,
    maxAttachmentBytes: discordAttachmentLimit(interaction.attachmentSizeLimit),
  };
}

export function chatContext(
  interaction: BaseInteraction,
  deps: Pick<DiscordDeps, 'config' | 'now'>,
): ChatContext {
  const user = interaction.user;
  const member = interaction.member;
  const nick = member && 'nick' in member && typeof member.nick === 'string' ? member.nick : undefined;
  return {
    platform: 'discord',
    userId: user.id,
    userName: nick ?? user.globalName ?? user.username,
    scope: interaction.guildId ?? `dm-${user.id}`,
    channel: interaction.channelId ?? '',
    message: originMessage(replyTarget(interaction, deps)),
    isAdmin: isAdmin(interaction, deps.config.adminRole),
  };
}
