// A reason the bot (or a worker) cannot start that the operator can fix from its message: a
// setting that points at the wrong thing, a busy port, a refused token. Printed as one line,
// without a stack trace; anything else is a bug and keeps its stack.

export class StartProblem extends Error {
  override name = 'StartProblem';
}

/** System error codes that mean a server could not be reached at all. */
const UNREACHABLE = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'UND_ERR_CONNECT_TIMEOUT',
]);

/** The error code when `error`, or an error it wraps (cause, a Web API client's original), says a server was unreachable. */
export function unreachableCode(error: unknown): string | undefined {
  let e: unknown = error;
  for (let depth = 0; e instanceof Object && depth < 5; depth++) {
    const { code, cause, original } = e as { code?: unknown; cause?: unknown; original?: unknown };
    if (typeof code === 'string' && UNREACHABLE.has(code)) return code;
    e = cause ?? original;
  }
  return undefined;
}
