import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { InvalidOptionError } from '../errors.js';

/** Who may talk to a dashboard or inspection hub. */
export interface Access {
  host: string;
  /** Required unless `host` is a loopback address. */
  token: string | undefined;
}

/** The header a client sends the token in (or `Authorization: Bearer`, or the `promised_token` cookie). */
export const TOKEN_HEADER = 'x-promised-token';
/** The cookie a browser gets after opening `/?token=…` once. */
export const TOKEN_COOKIE = 'promised_token';

const LOOPBACK_HOSTS = new Set(['127.0.0.1', '::1', 'localhost', '[::1]']);

/** True for an address only this machine can reach. */
export function isLoopbackHost(host: string): boolean {
  return LOOPBACK_HOSTS.has(host) || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/**
 * Checks the listening address against the token: loopback needs none; anything else (`0.0.0.0`,
 * a LAN address) is refused without one, because every promise's payload and the cancel and
 * retry actions would be open to the network.
 */
export function resolveAccess(host = '127.0.0.1', token = process.env.PROMISED_DASHBOARD_TOKEN): Access {
  const resolved = token === '' ? undefined : token;
  if (!isLoopbackHost(host) && resolved === undefined) {
    throw new InvalidOptionError('token', token, `a token (--token or PROMISED_DASHBOARD_TOKEN) to listen on ${host}; without one, listen on 127.0.0.1`);
  }
  if (resolved !== undefined && resolved.length < 16) throw new InvalidOptionError('token', '(hidden)', 'a token of at least 16 characters');
  return { host, token: resolved };
}

/** A refusal: the HTTP status and a one-line reason. */
export interface Refusal {
  status: 401 | 403;
  reason: string;
}

function sameSecret(a: string, b: string): boolean {
  // Hash first: timingSafeEqual needs equal lengths, and lengths must not leak either.
  return timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest());
}

/** The token a request presents: header, bearer, cookie or `?token=`. */
export function presentedToken(request: IncomingMessage): string | undefined {
  const header = request.headers[TOKEN_HEADER];
  if (typeof header === 'string') return header;
  const authorization = request.headers.authorization;
  if (authorization?.startsWith('Bearer ')) return authorization.slice(7);
  for (const part of (request.headers.cookie ?? '').split(';')) {
    const [name, ...value] = part.trim().split('=');
    if (name === TOKEN_COOKIE) return decodeURIComponent(value.join('='));
  }
  const query = new URL(request.url ?? '/', 'http://x').searchParams.get('token');
  return query ?? undefined;
}

/**
 * Every HTTP request and WebSocket upgrade passes here. With a token: it must be presented.
 * Without (loopback only): the `Host` must be a loopback name, so a web page on another site
 * cannot reach us by rebinding its DNS name to 127.0.0.1. Either way a browser's `Origin`, when
 * sent, must be our own: another site's page can neither open our WebSocket nor post to us.
 */
export function checkRequest(request: IncomingMessage, access: Access): Refusal | undefined {
  if (access.token !== undefined) {
    const token = presentedToken(request);
    if (token === undefined || !sameSecret(token, access.token)) return { status: 401, reason: 'a valid token is required (X-Promised-Token header, or open /?token=… once)' };
  } else {
    const hostname = hostnameOf(request.headers.host);
    if (hostname === undefined || !isLoopbackHost(hostname)) return { status: 403, reason: `host ${request.headers.host ?? '(none)'} is not a loopback name` };
  }
  const origin = request.headers.origin;
  if (origin !== undefined && origin !== 'null' && !sameOrigin(origin, request.headers.host)) return { status: 403, reason: `cross-origin request from ${origin} refused` };
  if (origin === 'null') return { status: 403, reason: 'requests from an opaque origin are refused' };
  return undefined;
}

/**
 * An action (cancel, retry) must also be a POST of JSON carrying `X-Requested-With: promised`:
 * a cross-site form cannot set that header, and a cross-site `fetch` that sets it needs a CORS
 * preflight, which we never grant.
 */
export function checkAction(request: IncomingMessage): { status: 403 | 405 | 415; reason: string } | undefined {
  if (request.method !== 'POST') return { status: 405, reason: 'actions are POST requests' };
  if (request.headers['x-requested-with'] !== 'promised') return { status: 403, reason: 'actions need the header X-Requested-With: promised' };
  if (!(request.headers['content-type'] ?? '').startsWith('application/json')) return { status: 415, reason: 'actions take a JSON body (Content-Type: application/json)' };
  return undefined;
}

function hostnameOf(hostHeader: string | undefined): string | undefined {
  if (!hostHeader) return undefined;
  try {
    return new URL(`http://${hostHeader}`).hostname;
  } catch {
    return undefined;
  }
}

function sameOrigin(origin: string, hostHeader: string | undefined): boolean {
  try {
    const url = new URL(origin);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.host === hostHeader;
  } catch {
    return false;
  }
}
