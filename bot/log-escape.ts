// Keeps a logged value on its line and out of the terminal's control: what users type (command
// text, names, file names) reaches the log, and a raw newline would forge a whole log line and
// an ESC sequence would reach the operator's terminal.

const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/** C0 controls, DEL, C1 controls, and Unicode's line and paragraph separators. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is what this module is for
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;

/** The text with every control character written as an escape (`\n`, `\u001b`). */
export function escapeControlCharacters(text: string): string {
  return text.replace(CONTROL, (c) => NAMED[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
