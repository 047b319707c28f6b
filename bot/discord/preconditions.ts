// Who may do what, checked on our side whatever Discord's client shows: library admins (Manage
// Server, Administrator or the configured role). The per-user rate limit is commands/rate-limit.ts.

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
