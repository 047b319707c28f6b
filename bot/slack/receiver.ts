// How Bolt talks to Slack, by mode: Socket Mode (an app-level token; Bolt opens the WebSocket
// URL apps.connections.open returns) or HTTP events on /slack/events, each request verified
// by the signing secret and a timestamp at most 5 minutes old. SLACK_API_URL points the Web
// API client, and Socket Mode's apps.connections.open, at another server (a stand-in).

import type { AppOptions, Logger as BoltLogger } from '@slack/bolt';
import type { SlackConfig } from '../../config/index.ts';

export const SLACK_EVENTS_PATH = '/slack/events';

export function boltOptions(slack: SlackConfig, logger: BoltLogger): AppOptions {
  const clientOptions: NonNullable<AppOptions['clientOptions']> = {
    // A chat reply that is minutes late is worse than an error the user can retry.
    retryConfig: { retries: 3, factor: 2, minTimeout: 1000, maxTimeout: 10_000 },
    timeout: 60_000,
  };
  if (slack.apiUrl) clientOptions.slackApiUrl = slack.apiUrl;
  const common: AppOptions = {
    token: slack.botToken,
    logger,
    clientOptions,
    // init() checks the token with auth.test before anything listens.
    deferInitialization: true,
  };
  if (slack.mode === 'socket') {
    if (!slack.appToken) throw new Error('Socket Mode needs SLACK_APP_TOKEN (an xapp- app-level token)');
    return { ...common, socketMode: true, appToken: slack.appToken };
  }
  if (!slack.signingSecret) throw new Error('HTTP mode needs SLACK_SIGNING_SECRET to verify requests');
  return {
    ...common,
    signingSecret: slack.signingSecret,
    endpoints: SLACK_EVENTS_PATH,
    // Ack first, work after: Slack wants the HTTP response within 3 s.
    processBeforeResponse: false,
  };
}
