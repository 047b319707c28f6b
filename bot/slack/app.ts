// The Slack adapter, wired: Bolt in Socket Mode or HTTP mode (receiver.ts), the listeners
// (listeners/index.ts), the delivery of replies and job progress (delivery.ts), and the
// per-channel pacing and per-user checks they share.

import type { AddressInfo } from 'node:net';
import { App as BoltApp } from '@slack/bolt';
import { type RateLimitOptions, UserRateLimit } from '../../commands/rate-limit.ts';
import type { SlackConfig } from '../../config/index.ts';
import type { Adapter } from '../adapter.ts';
import type { App } from '../app.ts';
import { StartProblem, unreachableCode } from '../start-problem.ts';
import { SlackDelivery, slackErrorCode } from './delivery.ts';
import { registerListeners } from './listeners/index.ts';
import { boltLogger } from './logger.ts';
import { ChannelPacer } from './pacer.ts';
import { AdminCheck } from './preconditions.ts';
import { boltOptions, SLACK_EVENTS_PATH } from './receiver.ts';

export interface SlackOptions {
  /** defaults to the app's configuration (SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET, SLACK_APP_TOKEN, SLACK_API_URL) */
  slack?: SlackConfig;
  /** HTTP mode: the port /slack/events listens on; default SLACK_PORT (3000; 0 picks a free one) */
  port?: number;
  /** HTTP mode: the address it listens on; all of them by default */
  host?: string;
  /** the per-user limit; what it leaves out takes DEFAULT_RATE_LIMIT, as on every platform */
  rateLimit?: Partial<RateLimitOptions>;
  /** least time between two writes to one channel (Slack: about 1 message a second) */
  channelIntervalMs?: number;
  /** least time between two progress edits of one status message */
  progressIntervalMs?: number;
}

export interface SlackAdapter extends Adapter {
  readonly mode: SlackConfig['mode'];
  /** HTTP mode: the port it listens on */
  readonly port?: number;
}

export async function startSlack(app: App, options: SlackOptions = {}): Promise<SlackAdapter> {
  const slack = options.slack ?? app.config.slack;
  if (!slack) throw new Error('the Slack adapter needs SLACK_BOT_TOKEN');
  const log = app.log.child('slack');
  const bolt = new BoltApp(boltOptions(slack, boltLogger(log.child('bolt'), app.config.logLevel)));
  const who = await refusedAsProblem(slack, 'SLACK_BOT_TOKEN', async () => {
    await bolt.init();
    return bolt.client.auth.test();
  });

  const pacer = new ChannelPacer(options.channelIntervalMs ?? 1000);
  const delivery = new SlackDelivery({
    client: bolt.client,
    bot: app,
    pacer,
    log,
    progressIntervalMs: options.progressIntervalMs ?? 1000,
    ...(who.user ? { botName: who.user } : {}),
  });
  delivery.adopt();
  registerListeners(bolt, {
    bot: app,
    slack,
    delivery,
    limiter: new UserRateLimit(options.rateLimit),
    admins: new AdminCheck(bolt.client, log),
    log,
  });
  bolt.error(async (e) => {
    log.error('Bolt could not handle a request', e);
  });

  const as = `@${who.user ?? 'bot'} in ${who.team ?? 'the workspace'}`;
  // Stopping twice (a shutdown signal, then a test's cleanup) is harmless.
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      delivery.stop();
      await bolt.stop();
    })();
    return stopping;
  };
  if (slack.mode === 'socket') {
    await refusedAsProblem(slack, 'SLACK_APP_TOKEN', () => bolt.start());
    return { name: 'slack', mode: 'socket', address: `Socket Mode as ${as}`, stop };
  }
  const listen = { port: options.port ?? slack.port, ...(options.host ? { host: options.host } : {}) };
  const server = (await bolt.start(listen).catch((e: NodeJS.ErrnoException) => {
    if (e.code !== 'EADDRINUSE' && e.code !== 'EACCES') throw e;
    throw new StartProblem(
      `Slack's HTTP events cannot listen on port ${listen.port} (${e.code === 'EADDRINUSE' ? 'it is in use' : 'not allowed'}); set SLACK_PORT to a free port above 1023`,
    );
  })) as { address(): AddressInfo | string | null };
  const bound = server.address();
  const port = typeof bound === 'object' && bound !== null ? bound.port : listen.port;
  return {
    name: 'slack',
    mode: 'http',
    port,
    address: `HTTP events on port ${port} at ${SLACK_EVENTS_PATH} as ${as}`,
    stop,
  };
}

/** Slack's answers that mean the token itself is no good. */
const REFUSED_TOKEN = new Set([
  'invalid_auth',
  'not_authed',
  'account_inactive',
  'token_revoked',
  'token_expired',
  'not_allowed_token_type',
]);

/** Runs a first call to Slack, turning a refused token or no network into a one-line StartProblem. */
async function refusedAsProblem<T>(slack: SlackConfig, key: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (e) {
    const code = slackErrorCode(e);
    if (code !== undefined && REFUSED_TOKEN.has(code))
      throw new StartProblem(`${key} was refused by Slack (${code}): copy it again from the app's settings`);
    const unreachable = unreachableCode(e);
    if (unreachable) {
      const host = new URL(slack.apiUrl ?? 'https://slack.com/api/').host;
      throw new StartProblem(`cannot reach Slack at ${host} (${unreachable}): check this machine's network`);
    }
    throw e;
  }
}
