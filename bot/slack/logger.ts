// Bolt's, the Web API client's and Socket Mode's log lines go through the bot's logger, so
// they share its format, its level and its redaction of tokens and secrets.

import { type Logger as BoltLogger, LogLevel } from '@slack/bolt';
import type { LogLevel as BotLogLevel, Logger } from '../log.ts';

export function boltLevel(level: BotLogLevel): LogLevel {
  switch (level) {
    case 'trace':
    case 'debug':
      return LogLevel.DEBUG;
    case 'info':
      return LogLevel.INFO;
    case 'warn':
      return LogLevel.WARN;
    default:
      return LogLevel.ERROR;
  }
}

function line(parts: unknown[]): string {
  return parts
    .map((p) => {
      if (typeof p === 'string') return p;
      if (p instanceof Error) return p.stack ?? p.message;
      try {
        return JSON.stringify(p);
      } catch {
        return String(p);
      }
    })
    .join(' ');
}

export function boltLogger(log: Logger, level: BotLogLevel): BoltLogger {
  let current = boltLevel(level);
  let named = log;
  return {
    debug: (...m) => named.debug(line(m)),
    info: (...m) => named.info(line(m)),
    warn: (...m) => named.warn(line(m)),
    error: (...m) => named.error(line(m)),
    setLevel: (l) => {
      current = l;
    },
    getLevel: () => current,
    setName: (name) => {
      named = log.child(name);
    },
  };
}
