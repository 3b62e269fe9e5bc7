import type http from 'node:http';
import type { Duplex } from 'node:stream';
import type { AnyStateMachine } from 'xstate';
import type { Engine } from '../engine/engine.js';
import { checkAction, checkRequest, presentedToken, resolveAccess, TOKEN_COOKIE, type Access } from '../inspect/access-control.js';
import { createInspectionHub, refuseUpgrade, type InspectionHub } from '../inspect/inspection-hub.js';
import type { ApiContext } from './api-context.js';
import { answerApi } from './dashboard-api.js';
import { loadStaticFiles, STATIC_FILES } from './static-files.js';

/** Options of {@link createDashboardHandler}. */
export interface DashboardOptions {
  /** Where the dashboard is mounted, e.g. `'/promised'`. @defaultValue `''` */
  basePath?: string;
  /**
   * Required on every request and WebSocket when set (header `X-Promised-Token`, `Authorization:
   * Bearer`, or the cookie a browser gets by opening `?token=…` once). Without one, only requests
   * whose `Host` is a loopback name are answered. @defaultValue `PROMISED_DASHBOARD_TOKEN`
   */
  token?: string;
  /** The engine's database path or URL: inspector session ids carry its fingerprint. */
  database?: string;
  /** Workflow machines by name, for workflows this engine does not register (it draws its own registered ones by itself). */
  machines?: Record<string, AnyStateMachine>;
  /** Re-read the database this often (ms) to show what other processes do. @defaultValue 1_000 */
  pollIntervalMs?: number;
}

/** A request handler for a Node HTTP server, with the WebSocket upgrade handler beside it. */
export interface DashboardHandler {
  /** Answers requests under the base path; calls `next` (or answers 404) for others. */
  (request: http.IncomingMessage, response: http.ServerResponse, next?: () => void): void;
  /** For `server.on('upgrade', …)`: takes `<basePath>/inspect`, leaves other upgrades alone (returns false). */
  upgrade(request: http.IncomingMessage, socket: Duplex, head: Buffer): boolean;
  /** The inspection hub the page and any Stately viewer listen to. */
  hub: InspectionHub;
  /** Closes the hub and its viewers; the engine and the server are left to you. */
  close(): Promise<void>;
}

const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
  'x-frame-options': 'DENY',
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
};
// The Stately bridge page embeds the hosted inspector (online only).
const STATELY_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; frame-src https://stately.ai; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
const MAX_BODY_BYTES = 16 * 1024;

/**
 * The web dashboard as a handler to mount in an HTTP server you already run.
 *
 * @example
 * ```ts
 * const dashboard = await createDashboardHandler(engine, { basePath: '/promised', database: './promised.db' });
 * const server = http.createServer((request, response) => dashboard(request, response, () => myApp(request, response)));
 * server.on('upgrade', (request, socket, head) => dashboard.upgrade(request, socket, head) || socket.destroy());
 * ```
 */
export async function createDashboardHandler(engine: Engine, options: DashboardOptions = {}): Promise<DashboardHandler> {
  const basePath = (options.basePath ?? '').replace(/\/+$/, '');
  const token = options.token ?? process.env.PROMISED_DASHBOARD_TOKEN;
  // A token, when given, is required; without one only loopback Host names are answered.
  const access: Access = { host: '127.0.0.1', token: token === '' ? undefined : token };
  if (access.token !== undefined) resolveAccess('0.0.0.0', access.token);
  const files = loadStaticFiles();
  const hub = await createInspectionHub(engine, { database: options.database, machines: options.machines, pollIntervalMs: options.pollIntervalMs ?? 1_000 });
  const api: ApiContext = { engine, feed: hub.feed, machines: options.machines ?? {} };

  const handler = ((request: http.IncomingMessage, response: http.ServerResponse, next?: () => void) => {
    const url = requestUrl(request, basePath);
    if (!url) {
      // Not a path at all: not ours to judge under a base path; a refusal when we own every path.
      if (basePath && next) return next();
      return sendError(response, 400, 'INVALID_URL', `the request target ${describeTarget(request.url)} is not a URL path`);
    }
    if (!(url.pathname === basePath || url.pathname.startsWith(`${basePath}/`))) {
      if (next) return next();
      return send(response, 404, 'text/plain; charset=utf-8', 'not found\n');
    }
    const refusal = checkRequest(request, access);
    if (refusal) return send(response, refusal.status, 'text/plain; charset=utf-8', `${refusal.reason}\n`);
    if (basePath && url.pathname === basePath && (request.method === 'GET' || request.method === 'HEAD')) {
      // The page's links are relative (`api/…`, `inspect`): at `/ops` they would resolve beside it.
      return redirect(response, 308, `${basePath}/${url.search}`);
    }
    const path = url.pathname.slice(basePath.length) || '/';
    if (access.token !== undefined && url.searchParams.has('token') && request.method === 'GET' && !path.startsWith('/api/')) {
      // The token arrived in the address (opened from a terminal): keep it in a cookie only this
      // site sends, and take it out of the address bar and history.
      const cookie = `${TOKEN_COOKIE}=${encodeURIComponent(presentedToken(request)!)}; HttpOnly; SameSite=Strict; Path=${basePath || '/'}`;
      url.searchParams.delete('token');
      return redirect(response, 303, `${url.pathname}${url.search}`, { 'set-cookie': cookie });
    }
    void route(request, response, path, url.searchParams).catch((error: unknown) => {
      if (!response.headersSent) sendError(response, 500, 'INTERNAL', (error as Error).message);
      else response.destroy();
    });
  }) as DashboardHandler;

  async function route(request: http.IncomingMessage, response: http.ServerResponse, path: string, query: URLSearchParams): Promise<void> {
    if (path.startsWith('/api/')) {
      let body: unknown = {};
      if (request.method === 'POST') {
        const refused = checkAction(request);
        if (refused) return sendError(response, refused.status, 'REFUSED', refused.reason);
        const read = await readJsonBody(request);
        if ('refused' in read) return sendError(response, read.refused.status, read.refused.code, read.refused.message);
        body = read.body;
      }
      const answer = await answerApi(api, request.method ?? 'GET', path, query, body);
      return send(response, answer.status, 'application/json; charset=utf-8', JSON.stringify(answer.body));
    }
    if (request.method !== 'GET' && request.method !== 'HEAD') return send(response, 405, 'text/plain; charset=utf-8', 'method not allowed\n');
    // Prometheus scrapes this (behind the same token as every other path).
    if (path === '/metrics') return send(response, 200, 'text/plain; version=0.0.4; charset=utf-8', await engine.metrics());
    const name = path === '/' ? 'index.html' : path === '/stately' ? 'stately.html' : path.slice(1);
    const body = Object.hasOwn(STATIC_FILES, name) ? files.get(name) : undefined;
    if (!body) return send(response, 404, 'text/plain; charset=utf-8', 'not found\n');
    const headers: Record<string, string> = name === 'stately.html' ? { 'content-security-policy': STATELY_CSP } : {};
    send(response, 200, STATIC_FILES[name]!, body, headers);
  }

  handler.upgrade = (request, socket, head) => {
    const url = requestUrl(request, basePath);
    if (url?.pathname !== `${basePath}/inspect`) return false;
    const refusal = checkRequest(request, access);
    if (refusal) refuseUpgrade(socket, refusal.status, refusal.reason);
    else hub.handleUpgrade(request, socket, head);
    return true;
  };
  handler.hub = hub;
  handler.close = async () => {
    await hub.close();
    hub.feed.close();
  };
  return handler;
}

function send(response: http.ServerResponse, status: number, type: string, body: string | Buffer, headers: Record<string, string> = {}): void {
  response.writeHead(status, { ...SECURITY_HEADERS, ...headers, 'content-type': type, 'content-length': Buffer.byteLength(body) });
  response.end(body);
}

function redirect(response: http.ServerResponse, status: 303 | 308, location: string, headers: Record<string, string> = {}): void {
  response.writeHead(status, { ...SECURITY_HEADERS, ...headers, location });
  response.end();
}

/** A JSON error answer, the one shape of every refusal under `/api/`. */
function sendError(response: http.ServerResponse, status: number, code: string, message: string): void {
  send(response, status, 'application/json; charset=utf-8', JSON.stringify({ error: { code, message } }));
}

/**
 * The request's URL, or undefined when its target is not one (`//host:99999`, `http://[::1`).
 * Under `app.use('/ops', dashboard)` express strips `/ops` from `url` and keeps the whole
 * target in `originalUrl`: a base path is judged against that one. Without a base path the
 * stripped `url` is the dashboard's path (its pages work; its WebSocket, which express does not
 * route, needs the base path).
 */
function requestUrl(request: http.IncomingMessage & { originalUrl?: string }, basePath: string): URL | undefined {
  const target = basePath && request.originalUrl !== undefined ? request.originalUrl : request.url;
  try {
    return new URL(target ?? '/', 'http://localhost');
  } catch {
    return undefined;
  }
}

function describeTarget(target: string | undefined): string {
  const text = JSON.stringify(target ?? '');
  return text.length > 100 ? `${text.slice(0, 100)}…` : text;
}

/**
 * An action's body: small JSON (`{}` when empty), or what is wrong with it. A body too large is
 * read to its end and dropped, so the answer reaches the client on a connection still in step.
 */
async function readJsonBody(request: http.IncomingMessage): Promise<{ body: unknown } | { refused: { status: 400 | 413; code: string; message: string } }> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of request) {
    size += (chunk as Buffer).length;
    if (size <= MAX_BODY_BYTES) chunks.push(chunk as Buffer);
  }
  if (size > MAX_BODY_BYTES) return { refused: { status: 413, code: 'BODY_TOO_LARGE', message: `the request body has ${size} bytes; actions take at most ${MAX_BODY_BYTES}` } };
  const text = Buffer.concat(chunks).toString('utf8').trim();
  try {
    return { body: text ? (JSON.parse(text) as unknown) : {} };
  } catch (error) {
    return { refused: { status: 400, code: 'INVALID_JSON', message: `the request body is not JSON: ${(error as Error).message}` } };
  }
}
