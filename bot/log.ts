// One-line structured logs on stdout/stderr, filtered by LOG_LEVEL. Values pass through
// redactText so a token that ends up in a message is masked anyway, then through
// escapeControlCharacters so a value cannot break its line or drive the terminal.

import { redactText } from '../config/index.ts';
import { escapeControlCharacters } from './log-escape.ts';

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;
export type LogLevel = (typeof LEVELS)[number] | 'silent';

export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string, error?: unknown): void;
  child(scope: string): Logger;
}

/** text: for a terminal; json: one object per line (time, level, scope, msg) for a log collector. */
export type LogFormat = 'text' | 'json';

export function createLogger(level: LogLevel = 'info', scope = 'bot', format: LogFormat = 'text'): Logger {
  const min = level === 'silent' ? Number.POSITIVE_INFINITY : LEVELS.indexOf(level);
  const write = (at: (typeof LEVELS)[number], message: string) => {
    if (LEVELS.indexOf(at) < min) return;
    const time = new Date().toISOString();
    const line =
      format === 'json'
        ? `${JSON.stringify({ time, level: at, scope, msg: redactText(message) })}\n`
        : `${time} ${at.padEnd(5)} [${scope}] ${escapeControlCharacters(redactText(message))}\n`;
    (LEVELS.indexOf(at) >= LEVELS.indexOf('warn') ? process.stderr : process.stdout).write(line);
  };
  return {
    debug: (m) => write('debug', m),
    info: (m) => write('info', m),
    warn: (m) => write('warn', m),
    error: (m, e) =>
      write(
        'error',
        e === undefined ? m : `${m}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`,
      ),
    child: (s) => createLogger(level, `${scope}/${s}`, format),
  };
}
