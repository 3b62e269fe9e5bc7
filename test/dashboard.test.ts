import http from 'node:http';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { createDashboardHandler, createEngine, startDashboard, type Engine, type RunningDashboard } from '../src/index.js';
import { tempDbPath } from './helpers/temp-db.js';

const engines: Engine[] = [];
const dashboards: RunningDashboard[] = [];
afterEach(async () => {
  for (const dashboard of dashboards.splice(0)) await dashboard.close();
  for (const engine of engines.splice(0)) await engine.stop();
});

async function setUp(options: { host?: string; token?: string } = {}) {
  const database = tempDbPath();
  const engine = await createEngine({ database, cleanupIntervalMs: 0, changeCheckIntervalMs: 0 });
  engines.push(engine);
  engine.task('work', async () => 'ok');
  const dashboard = await startDashboard(engine, { port: 0, database, ...options });
  dashboards.push(dashboard);
  return { engine, dashboard, base: `http://127.0.0.1:${dashboard.port}` };
}

/** A request through loopback only, with exactly the headers given. */
function request(url: string, options: { method?: string; headers?: Record<string, string>; body?: string } = {}) {
  return new Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }>((resolve, reject) => {
    const outgoing = http.request(url, { method: options.method ?? 'GET', headers: options.headers }, (response) => {
      let body = '';
      response.on('data', (chunk) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body, headers: response.headers }));
    });
    outgoing.on('error', reject);
    outgoing.end(options.body);
  });
}

function upgradeStatus(url: string, headers: Record<string, string> = {}) {
  return new Promise<number>((resolve) => {
    const socket = new WebSocket(url, { headers });
    socket.on('unexpected-response', (_request, response) => resolve(response.statusCode ?? 0));
    socket.on('open', () => {
      socket.terminate();
      resolve(101);
    });
    socket.on('error', () => undefined);
  });
}

const ACTION = { 'content-type': 'application/json', 'x-requested-with': 'promised' };

describe('the dashboard server', () => {
  it('refuses to listen beyond loopback without a token', async () => {
    const database = tempDbPath();
    const engine = await createEngine({ database, cleanupIntervalMs: 0 });
    engines.push(engine);
    const previous = process.env.PROMISED_DASHBOARD_TOKEN;
    delete process.env.PROMISED_DASHBOARD_TOKEN;
    try {
      await expect(startDashboard(engine, { port: 0, host: '0.0.0.0' })).rejects.toMatchObject({ code: 'INVALID_OPTION' });
    } finally {
      if (previous !== undefined) process.env.PROMISED_DASHBOARD_TOKEN = previous;
    }
  });

  it('bound to 0.0.0.0 with a token, refuses every request and WebSocket without it', async () => {
    const token = 'correct-horse-battery-staple';
    const { base, engine } = await setUp({ host: '0.0.0.0', token });
    // Only ever through 127.0.0.1.
    expect((await request(`${base}/`)).status).toBe(401);
    expect((await request(`${base}/api/stats`)).status).toBe(401);
    expect((await request(`${base}/api/stats`, { headers: { 'x-promised-token': 'wrong-token-of-some-length' } })).status).toBe(401);
    const id = await engine.enqueue('work', {});
    expect((await request(`${base}/api/promises/${id}/cancel`, { method: 'POST', headers: ACTION, body: '{}' })).status).toBe(401);
    expect((await engine.get(id))!.status).toBe('pending');
    expect(await upgradeStatus(`ws://127.0.0.1:${base.split(':')[2]}/inspect`)).toBe(401);

    expect((await request(`${base}/api/stats`, { headers: { 'x-promised-token': token } })).status).toBe(200);
    expect(await upgradeStatus(`ws://127.0.0.1:${base.split(':')[2]}/inspect`, { 'x-promised-token': token })).toBe(101);
    // Opening ?token=… once sets an HttpOnly, same-site cookie and drops the token from the address.
    const opened = await request(`${base}/?token=${token}`);
    expect(opened.status).toBe(303);
    expect(opened.headers.location).toBe('/');
    expect(String(opened.headers['set-cookie'])).toMatch(/^promised_token=.*HttpOnly; SameSite=Strict/);
    const cookie = String(opened.headers['set-cookie']).split(';')[0]!;
    expect((await request(`${base}/`, { headers: { cookie } })).status).toBe(200);
  });

  it('takes actions only as same-origin JSON POSTs with its header, and answers only loopback host names', async () => {
    const { base, engine } = await setUp();
    const id = await engine.enqueue('work', {});
    const cancel = `${base}/api/promises/${id}/cancel`;
    expect((await request(cancel, { method: 'GET' })).status).toBe(404);
    expect((await request(cancel, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'a=1' })).status).toBe(403);
    expect((await request(cancel, { method: 'POST', headers: { 'x-requested-with': 'promised', 'content-type': 'text/plain' }, body: '{}' })).status).toBe(415);
    expect((await request(cancel, { method: 'POST', headers: { ...ACTION, origin: 'http://evil.example' }, body: '{}' })).status).toBe(403);
    expect((await request(`${base}/api/stats`, { headers: { host: 'evil.example' } })).status).toBe(403);
    expect(await upgradeStatus(`ws://127.0.0.1:${base.split(':')[2]}/inspect`, { origin: 'http://evil.example' })).toBe(403);
    expect((await engine.get(id))!.status).toBe('pending');
    const done = await request(cancel, { method: 'POST', headers: { ...ACTION, origin: base }, body: '{}' });
    expect(done.status).toBe(200);
    expect((await engine.get(id))!.error?.code).toBe('CANCELLED');
    expect((await request(cancel, { method: 'POST', headers: ACTION, body: '{}' })).status).toBe(409);
    const page = await request(`${base}/`);
    expect(page.headers['content-security-policy']).toContain("script-src 'self'");
  });

  it('mounts in an existing HTTP server under a base path', async () => {
    const database = tempDbPath();
    const engine = await createEngine({ database, cleanupIntervalMs: 0 });
    engines.push(engine);
    const dashboard = await createDashboardHandler(engine, { basePath: '/ops/promised', database });
    const server = http.createServer((req, res) => dashboard(req, res, () => res.end('my app')));
    server.on('upgrade', (req, socket, head) => dashboard.upgrade(req, socket, head) || socket.destroy());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    const port = (server.address() as { port: number }).port;
    try {
      expect((await request(`http://127.0.0.1:${port}/`)).body).toBe('my app');
      expect((await request(`http://127.0.0.1:${port}/ops/promised/`)).body).toContain('<title>promised dashboard</title>');
      expect(JSON.parse((await request(`http://127.0.0.1:${port}/ops/promised/api/stats`)).body)).toMatchObject({ pending: 0 });
      expect(await upgradeStatus(`ws://127.0.0.1:${port}/ops/promised/inspect`)).toBe(101);
    } finally {
      await dashboard.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

/** A request whose target is sent exactly as given (no URL normalisation on our side). */
function rawRequest(port: number, target: string, options: { method?: string; headers?: Record<string, string>; body?: string } = {}) {
  return new Promise<{ status: number; body: string; type: string }>((resolve, reject) => {
    const outgoing = http.request({ host: '127.0.0.1', port, path: target, method: options.method ?? 'GET', headers: options.headers }, (response) => {
      let body = '';
      response.on('data', (chunk) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body, type: String(response.headers['content-type']) }));
    });
    outgoing.on('error', reject);
    outgoing.end(options.body);
  });
}

describe('the dashboard API refuses malformed requests with 400 and a stable code', () => {
  it.each([
    ['a truncated percent-encoding in the path', 'GET', '/api/promises/%E0%A4%A'],
    ['a lone percent sign in the path', 'GET', '/api/promises/%'],
    ['a percent-encoding that is not UTF-8, in an action', 'POST', '/api/promises/%FF/cancel'],
  ])('%s: INVALID_URL', async (_label, method, target) => {
    const { dashboard, base } = await setUp();
    const answer = await rawRequest(dashboard.port, target, { method, headers: method === 'POST' ? { ...ACTION, origin: base } : {}, body: method === 'POST' ? '{}' : undefined });
    expect(answer.status).toBe(400);
    expect(answer.type).toMatch(/^application\/json/);
    expect(JSON.parse(answer.body)).toEqual({ error: { code: 'INVALID_URL', message: expect.stringMatching(/percent-encoding/) } });
  });

  it('a request target that is no URL at all: 400, and the server goes on answering', async () => {
    const { dashboard, engine } = await setUp();
    for (const target of ['//host:99999/api/stats', 'http://[::1/api/stats']) {
      const answer = await rawRequest(dashboard.port, target);
      expect(answer.status, target).toBe(400);
      expect(JSON.parse(answer.body)).toMatchObject({ error: { code: 'INVALID_URL' } });
    }
    expect((await rawRequest(dashboard.port, '/api/stats')).status).toBe(200);
    // A WebSocket upgrade to such a target is not ours: the socket is closed, nothing thrown.
    const closed = await new Promise<string>((resolve) => {
      const socket = net.connect(dashboard.port, '127.0.0.1', () =>
        socket.write('GET //host:99999/inspect HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n'),
      );
      let received = '';
      socket.on('data', (chunk) => (received += chunk));
      socket.on('close', () => resolve(received));
      socket.on('error', () => undefined);
    });
    expect(closed).toBe('');
    expect((await rawRequest(dashboard.port, '/api/stats')).status).toBe(200);
    expect(await engine.stats()).toMatchObject({ pending: 0 });
  });

  it('an action whose body is not JSON: 400 INVALID_JSON; one too large: 413 BODY_TOO_LARGE; nothing is done', async () => {
    const { dashboard, base, engine } = await setUp();
    const id = await engine.enqueue('work', {});
    const headers = { ...ACTION, origin: base };
    const bad = await rawRequest(dashboard.port, `/api/promises/${id}/cancel`, { method: 'POST', headers, body: '{not json' });
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.body)).toMatchObject({ error: { code: 'INVALID_JSON' } });
    const large = await rawRequest(dashboard.port, `/api/promises/${id}/cancel`, { method: 'POST', headers, body: JSON.stringify({ pad: 'x'.repeat(20_000) }) });
    expect(large.status).toBe(413);
    expect(JSON.parse(large.body)).toMatchObject({ error: { code: 'BODY_TOO_LARGE' } });
    expect((await engine.get(id))!.status).toBe('pending');
  });
});
