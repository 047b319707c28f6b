// Reading a capped JSON body and writing JSON answers: the little HTTP the playground needs.

import type { IncomingMessage, ServerResponse } from 'node:http';

/** An answer with a status and a message the page shows as it is. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** The body parsed as a JSON object; 413 past `maxBytes`, 400 for anything but an object. */
export async function readJsonObject(
  req: IncomingMessage,
  maxBytes: number,
): Promise<Record<string, unknown>> {
  const tooLarge = () => new HttpError(413, `the request is over ${maxBytes} bytes; send a shorter command`);
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) throw tooLarge();
  const body = await new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let refused = false;
    req.on('data', (chunk: Buffer) => {
      if (refused) return;
      size += chunk.length;
      // Stop keeping it at once: a client streaming gigabytes must not fill memory. The rest is
      // read and dropped, so the client gets the 413 rather than a reset connection.
      if (size > maxBytes) {
        refused = true;
        chunks.length = 0;
        reject(tooLarge());
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (!refused) resolve(Buffer.concat(chunks));
    });
    req.on('error', reject);
  });
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch {
    throw new HttpError(400, 'the body is not valid JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new HttpError(400, 'the body must be a JSON object');
  return value as Record<string, unknown>;
}

/** A string field of a body, checked for type and length. */
export function stringField(
  body: Record<string, unknown>,
  name: string,
  options: { maxLength: number; optional?: boolean },
): string | undefined {
  const value = body[name];
  if (value === undefined || value === null) {
    if (options.optional) return undefined;
    throw new HttpError(400, `'${name}' is missing`);
  }
  if (typeof value !== 'string') throw new HttpError(400, `'${name}' must be a string`);
  if (value.length > options.maxLength)
    throw new HttpError(413, `'${name}' is over ${options.maxLength} characters; make it shorter`);
  return value;
}

export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
  });
  res.end(body);
}

export function sendError(res: ServerResponse, status: number, message: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  sendJson(res, status, { error: message });
}
