// What every listener gets: the bot's parts and the adapter's delivery and checks.

import type { SlackConfig } from '../../../config/index.ts';
import type { App } from '../../app.ts';
import type { Logger } from '../../log.ts';
import type { SlackDelivery } from '../delivery.ts';
import type { AdminCheck, UserRateLimiter } from '../preconditions.ts';

export interface SlackDeps {
  bot: App;
  slack: SlackConfig;
  delivery: SlackDelivery;
  limiter: UserRateLimiter;
  admins: AdminCheck;
  log: Logger;
}
