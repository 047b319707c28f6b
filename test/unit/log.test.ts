// The bot's log lines: one line per call whatever the values hold, no control character
// reaching the terminal, secrets masked.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createLogger } from '../../bot/log.ts';
import { escapeControlCharacters } from '../../bot/log-escape.ts';

/** The lines a logger writes while `fn` runs. */
function written(fn: () => void): string[] {
  const out: string[] = [];
  const streams = [process.stdout, process.stderr];
  const writes = streams.map((s) => s.write);
  for (const s of streams)
    s.write = ((chunk: unknown) => {
      out.push(String(chunk));
      return true;
    }) as typeof s.write;
  try {
    fn();
  } finally {
    streams.forEach((s, i) => {
      s.write = writes[i];
    });
  }
  return out;
}

describe('log lines', () => {
  test('a newline in a value cannot forge a second log line', () => {
    const typed = 'cat:<tabby>\n2026-01-01T00:00:00.000Z info  [bot] admin logged in';
    const lines = written(() => createLogger('debug').debug(`/compose ${typed}`));
    assert.equal(lines.length, 1);
    assert.equal(lines[0].indexOf('\n'), lines[0].length - 1, 'one newline, at the end');
    assert.match(lines[0], /cat:<tabby>\\n2026-01-01T00:00:00\.000Z info {2}\[bot\] admin logged in\n$/);
  });

  test('escape sequences and other C0 and C1 controls are written as escapes', () => {
    const lines = written(() =>
      createLogger('info').warn('name \u001b[2J\u001b]0;owned\u0007 \r\t\u0000\u007f\u009b31m \u2028end'),
    );
    assert.equal(lines.length, 1);
    const body = lines[0].slice(0, -1);
    assert.ok(![...body].some((c) => c.charCodeAt(0) < 0x20 || (c >= '\u007f' && c <= '\u009f')));
    assert.match(body, /name \\u001b\[2J\\u001b\]0;owned\\u0007 \\r\\t\\u0000\\u007f\\u009b31m \\u2028end$/);
  });

  test('an error’s stack stays on the line', () => {
    const lines = written(() => createLogger('info').error('failed', new Error('boom')));
    assert.equal(lines.length, 1);
    assert.match(lines[0], /failed: Error: boom\\n {4}at /);
  });

  test('printable text, quotes and backslashes pass unchanged', () => {
    const text = 'a "cat" \\ 🐱 — ünïcode';
    assert.equal(escapeControlCharacters(text), text);
  });
});
