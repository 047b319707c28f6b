// How Bolt talks to Slack, by mode: Socket Mode (an app-level token; Bolt opens the WebSocket
// URL apps.connections.open returns) or HTTP events on /slack/events, each request verified
// by the signing secret and a timestamp at most 5 minutes away from now, before or after.
// SLACK_API_URL points the Web API client, and Socket Mode's apps.connections.open, at another
// server (a stand-in).

import type { RequestListener } from 'node:http';
import { type AppOptions, type Logger as BoltLogger, HTTPReceiver } from '@slack/bolt';
import type { SlackConfig } from '../../config/index.ts';

export const SLACK_EVENTS_PATH = '/slack/events';

/** Slack's documentation and SDKs refuse requests dated further from now than this, either way. */
export const REQUEST_MAX_SKEW_SECONDS = 5 * 60;

/** Why a request's x-slack-request-timestamp is refused, or undefined when it is within the window. */
export function requestTimeProblem(header: string | string[] | undefined, nowMs: number): string | undefined {
  const seconds = typeof header === 'string' && /^\d+$/.test(header) ? Number(header) : Number.NaN;
  if (Number.isNaN(seconds)) return 'no request timestamp';
  const skew = seconds - nowMs / 1000;
  if (Math.abs(skew) <= REQUEST_MAX_SKEW_SECONDS) return undefined;
  return `dated ${Math.round(Math.abs(skew))} s ${skew > 0 ? 'ahead' : 'behind'}`;
}

/** Bolt refuses only old requests; this refuses those dated in the future too, before Bolt reads them. */
function refuseSkewedRequests(
  listener: RequestListener,
  logger: BoltLogger,
  now: () => number,
): RequestListener {
  return (req, res) => {
    const path = (req.url ?? '').split('?')[0];
    const problem =
      path === SLACK_EVENTS_PATH
        ? requestTimeProblem(req.headers['x-slack-request-timestamp'], now())
        : undefined;
    if (problem === undefined) {
      listener(req, res);
      return;
    }
    logger.info(`refused a request to ${SLACK_EVENTS_PATH}: ${problem}`);
    req.resume();
    res.writeHead(401).end();
  };
}

export function boltOptions(
  slack: SlackConfig,
  logger: BoltLogger,
  now: () => number = Date.now,
): AppOptions {
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
  const receiver = new HTTPReceiver({
    signingSecret: slack.signingSecret,
    endpoints: SLACK_EVENTS_PATH,
    logger,
    // Ack first, work after: Slack wants the HTTP response within 3 s.
    processBeforeResponse: false,
  });
  receiver.requestListener = refuseSkewedRequests(receiver.requestListener, logger, now);
  return { ...common, receiver };
}
