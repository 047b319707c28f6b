// Upload size limits of the chat platforms, in bytes: every encoder takes one of these as `maxBytes`.

/** Discord's per-attachment limit when the interaction does not say otherwise (10 MiB). */
export const DISCORD_DEFAULT_ATTACHMENT_BYTES = 10 * 1024 * 1024;

/** Slack's per-file limit for files.uploadV2 (1 GB); workspaces may restrict it further. */
export const SLACK_MAX_FILE_BYTES = 1024 * 1024 * 1024;

/** What the renderers assume when a caller names no limit: the smaller platform default. */
export const DEFAULT_MAX_BYTES = Math.min(DISCORD_DEFAULT_ATTACHMENT_BYTES, SLACK_MAX_FILE_BYTES);

/** The smallest budget encodeImage accepts: below it not even an 8×8 picture is guaranteed to fit. */
export const MIN_ENCODE_BYTES = 1024;

/**
 * Per-file budget for a Discord reply: the interaction's `attachment_size_limit` when present (it grows with
 * server boosts and the user's Nitro), else the 10 MiB default.
 */
export function discordAttachmentLimit(attachmentSizeLimit?: number | null): number {
  return attachmentSizeLimit != null && Number.isFinite(attachmentSizeLimit) && attachmentSizeLimit > 0
    ? Math.floor(attachmentSizeLimit)
    : DISCORD_DEFAULT_ATTACHMENT_BYTES;
}

/** Per-file budget for a Slack upload; `workspaceLimit` is the workspace's own cap when an admin set one. */
export function slackFileLimit(workspaceLimit?: number | null): number {
  return workspaceLimit != null && Number.isFinite(workspaceLimit) && workspaceLimit > 0
    ? Math.min(Math.floor(workspaceLimit), SLACK_MAX_FILE_BYTES)
    : SLACK_MAX_FILE_BYTES;
}
