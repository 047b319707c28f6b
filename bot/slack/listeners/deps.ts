// What every listener gets: the bot's parts and the adapter's delivery and checks.

import type { UserRateLimit } from '../../../commands/rate-limit.ts';
import type { SlackConfig } from '../../../config/index.ts';
import type { App } from '../../app.ts';
import type { Logger } from '../../log.ts';
import type { SlackDelivery } from '../delivery.ts';
import type { AdminCheck } from '../preconditions.ts';

export interface SlackDeps {
  bot: App;
  slack: SlackConfig;
  delivery: SlackDelivery;
  limiter: UserRateLimit;
  admins: AdminCheck;
  log: Logger;
}
