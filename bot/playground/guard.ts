// Who may talk to the playground: only pages it served itself. A Host check stops DNS
// rebinding (a site whose name resolves to 127.0.0.1), an Origin and Sec-Fetch-Site check
// stops other sites' pages from posting commands or reading pictures.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { isIP } from 'node:net';

const LOOPBACK_NAMES = new Set(['localhost', '127.0.0.1', '::1']);
const WILDCARD_HOSTS = new Set(['0.0.0.0', '::', '']);

export interface HostPolicy {
  /** the Host header value names this server */
  hostAllowed(header: string | undefined): boolean;
  /** the Origin header value is one of this server's own origins */
  originAllowed(origin: string): boolean;
}

/** Splits `name:port`, `[v6]:port` or `name` into a lowercase host name and a port. */
export function splitHost(value: string): { name: string; port: number } | undefined {
  const m = /^(?:\[([0-9a-f:.]+)\]|([^\s:[\]/@]+))(?::(\d{1,5}))?$/i.exec(value.trim());
  if (!m) return undefined;
  return { name: (m[1] ?? m[2]).toLowerCase(), port: m[3] === undefined ? 80 : Number(m[3]) };
}

/**
 * The host names this server answers to on `port`: the loopback names, the configured
 * host, and, when it listens on every interface, any IP address (rebinding needs a DNS name).
 */
export function hostPolicy(configuredHost: string, port: number): HostPolicy {
  const own = configuredHost.toLowerCase().replace(/^\[|\]$/g, '');
  const anyAddress = WILDCARD_HOSTS.has(own);
  const nameAllowed = (name: string) =>
    LOOPBACK_NAMES.has(name) || name === own || (anyAddress && isIP(name) !== 0);
  const hostAllowed = (header: string | undefined) => {
    if (header === undefined) return false;
    const h = splitHost(header);
    return h !== undefined && h.port === port && nameAllowed(h.name);
  };
  return {
    hostAllowed,
    originAllowed(origin: string) {
      const m = /^http:\/\/([^/]+)$/i.exec(origin);
      return m !== null && hostAllowed(m[1]);
    },
  };
}

export type Refusal = { status: number; message: string };

/** Why a request must be refused, or undefined when it may proceed. */
export function refusalOf(req: IncomingMessage, policy: HostPolicy, path: string): Refusal | undefined {
  if (!policy.hostAllowed(req.headers.host)) {
    return {
      status: 421,
      message: 'this playground only answers on its own address (open the URL the bot printed)',
    };
  }
  const origin = req.headers.origin;
  if (origin !== undefined && !policy.originAllowed(origin)) {
    return { status: 403, message: 'requests from other sites are not accepted' };
  }
  // A link from another site may open the page, but nothing else may be fetched cross-site.
  const site = req.headers['sec-fetch-site'];
  const navigation = req.method === 'GET' && req.headers['sec-fetch-mode'] === 'navigate' && path === '/';
  if (site === 'cross-site' && !navigation) {
    return { status: 403, message: 'requests from other sites are not accepted' };
  }
  if (req.method === 'POST' && !/^application\/json\b/i.test(req.headers['content-type'] ?? '')) {
    return { status: 415, message: 'send JSON (Content-Type: application/json)' };
  }
  return undefined;
}

/** Headers every answer carries: nothing framed, fetched or run from elsewhere. */
export function setSecurityHeaders(res: ServerResponse): void {
  res.setHeader(
    'Content-Security-Policy',
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
      "font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  );
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('X-Frame-Options', 'DENY');
  res.setHeader('Referrer-Policy', 'no-referrer');
  res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
  res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
}
