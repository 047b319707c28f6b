// Discord errors as log lines without secrets: interaction and webhook tokens sit in request
// URLs, so routes are logged with the token cut out (the bot token is masked by the logger).

import { DiscordAPIError, HTTPError, RESTJSONErrorCodes } from 'discord.js';

// /webhooks/{app}/{token}/… and /interactions/{id}/{token}/callback carry a token as a path part.
const TOKEN_IN_PATH = /(\/(?:webhooks|interactions)\/\d+\/)[^/?#\s]+/g;

export function scrubTokens(text: string): string {
  return text.replace(TOKEN_IN_PATH, '$1…');
}

function routeOf(url: string): string {
  try {
    return scrubTokens(new URL(url).pathname);
  } catch {
    return scrubTokens(url);
  }
}

/** For the log: what Discord answered and to which route (or our own error with its stack), never a token. */
export function describeError(error: unknown, options: { stack?: boolean } = {}): string {
  if (error instanceof DiscordAPIError)
    return `Discord answered ${error.status} (code ${error.code}) to ${error.method} ${routeOf(error.url)}: ${scrubTokens(error.message)}`;
  if (error instanceof HTTPError)
    return `Discord answered ${error.status} to ${error.method} ${routeOf(error.url)}: ${scrubTokens(error.message)}`;
  if (error instanceof Error)
    return scrubTokens(options.stack && error.stack ? error.stack : `${error.name}: ${error.message}`);
  return scrubTokens(String(error));
}

/** The interaction token no longer works (expired after 15 minutes, or the message is gone). */
export function isGoneInteraction(error: unknown): boolean {
  if (!(error instanceof DiscordAPIError)) return false;
  return (
    error.code === RESTJSONErrorCodes.InvalidWebhookToken ||
    error.code === RESTJSONErrorCodes.UnknownWebhook ||
    error.code === RESTJSONErrorCodes.UnknownMessage ||
    error.code === RESTJSONErrorCodes.UnknownInteraction ||
    error.status === 401 ||
    error.status === 404
  );
}
