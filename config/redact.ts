// Keeps tokens and secrets out of log lines: masks values loaded as secrets, token-shaped
// strings, URL credentials, and fields whose names say they hold a secret.

const MASK = '[redacted]';

/** Secret values seen by loadConfig; masked wherever they appear, even inside other text. */
const knownSecrets = new Set<string>();

/** Shorter values would mask ordinary words. */
const MIN_SECRET_LENGTH = 6;

export function registerSecret(value: string): void {
  if (value.length >= MIN_SECRET_LENGTH) knownSecrets.add(value);
}

const tokenShapes: RegExp[] = [
  /\bxox[abposr]-[A-Za-z0-9-]+/g, // Slack bot, user and legacy tokens
  /\bxapp-[A-Za-z0-9-]+/g, // Slack app-level tokens
  /\b[A-Za-z0-9_-]{23,30}\.[A-Za-z0-9_-]{6,7}\.[A-Za-z0-9_-]{27,}/g, // Discord bot tokens
  /\b(Bot|Bearer)\s+[A-Za-z0-9._~+/=-]{16,}/g, // Authorization header values
];

/** scheme://user:password@host → scheme://[redacted]@host */
const urlCredentials = /\b([a-z][a-z0-9+.-]*:\/\/)[^\s/@]+@/gi;

/** Field names that hold a secret (`token`, `botToken`, `SLACK_SIGNING_SECRET`; not `tokenizerDir`). */
const secretField = /(token|secret|password|passwd|api_?key|authorization|cookie)$/i;

export function redactText(text: string): string {
  let out = text;
  // Longest first, so a secret that contains another is masked whole.
  for (const secret of [...knownSecrets].sort((a, b) => b.length - a.length)) {
    out = out.split(secret).join(MASK);
  }
  for (const shape of tokenShapes) out = out.replace(shape, MASK);
  return out.replace(urlCredentials, `$1${MASK}@`);
}

/**
 * A copy of `value` safe to log: strings are masked as in redactText, plain objects and
 * arrays are walked (a string field named like `token` or `signingSecret` is masked whole),
 * errors keep their name with message and stack masked. Other objects pass through.
 */
export function redact<T>(value: T): T {
  return redactValue(value, new WeakMap()) as T;
}

function redactValue(value: unknown, seen: WeakMap<object, unknown>): unknown {
  if (typeof value === 'string') return redactText(value);
  if (typeof value !== 'object' || value === null) return value;
  const done = seen.get(value);
  if (done !== undefined) return done;
  if (value instanceof Error) {
    const copy = new Error(redactText(value.message));
    copy.name = value.name;
    copy.stack = value.stack === undefined ? undefined : redactText(value.stack);
    seen.set(value, copy);
    return copy;
  }
  if (Array.isArray(value)) {
    const copy: unknown[] = [];
    seen.set(value, copy);
    for (const item of value) copy.push(redactValue(item, seen));
    return copy;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return value;
  const copy: Record<string, unknown> = {};
  seen.set(value, copy);
  for (const [key, field] of Object.entries(value)) {
    copy[key] = typeof field === 'string' && secretField.test(key) ? MASK : redactValue(field, seen);
  }
  return copy;
}
