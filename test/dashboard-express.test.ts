// The dashboard mounted in an express app under /ops, as docs/dashboard.md shows: pages, API and
// the WebSocket upgrade all under the base path, the app's own routes untouched; in Chromium the
// page loads there and follows live changes over the WebSocket.
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import express from 'express';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { createDashboardHandler, createEngine, type DashboardHandler, type Engine } from '../src/index.js';
import { tempDbPath } from './helpers/temp-db.js';

const CHROMIUM = '/usr/bin/chromium';
const OUTPUT = path.resolve(import.meta.dirname, '../test-output');

describe('the dashboard inside an express app, under /ops', () => {
  let engine: Engine;
  let dashboard: DashboardHandler;
  let plain: DashboardHandler;
  let server: http.Server;
  let base: string;

  beforeAll(async () => {
    const database = tempDbPath();
    engine = await createEngine({ database, changeCheckIntervalMs: 10, cleanupIntervalMs: 0, stopTimeoutMs: 1_000 });
    dashboard = await createDashboardHandler(engine, { basePath: '/ops', database });
    engine.task('work', async (payload: { ms: number }) => new Promise((resolve) => setTimeout(() => resolve('done'), payload.ms)));
    await engine.start();
    const app = express();
    app.get('/', (_request, response) => void response.send('the app'));
    app.use('/ops', dashboard);
    plain = await createDashboardHandler(engine, { database });
    app.use('/plain', plain);
    app.get('/ops-not-ours', (_request, response) => void response.send('still the app'));
    server = http.createServer(app);
    server.on('upgrade', (request, socket, head) => dashboard.upgrade(request, socket, head) || socket.destroy());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await dashboard?.close();
    await plain?.close();
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
    await engine?.stop();
  });

  it('answers pages, the API and the metrics under /ops, and leaves the app its own routes', async () => {
    const page = await fetch(`${base}/ops/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<title>promised dashboard</title>');
    // Without the slash the page's relative links would miss: it is sent to /ops/.
    const bare = await fetch(`${base}/ops?x=1`, { redirect: 'manual' });
    expect(bare.status).toBe(308);
    expect(bare.headers.get('location')).toBe('/ops/?x=1');
    expect((await fetch(`${base}/ops/app.js`)).headers.get('content-type')).toMatch(/javascript/);
    const stats = await fetch(`${base}/ops/api/stats`);
    expect(stats.status).toBe(200);
    expect(await stats.json()).toMatchObject({ pending: 0, failed: 0 });
    expect(await (await fetch(`${base}/ops/metrics`)).text()).toMatch(/^# HELP/m);
    const missing = await fetch(`${base}/ops/api/promises/999`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ error: { code: 'NOT_FOUND' } });
    // Mounted without a base path, its pages and API still answer under the mount.
    expect(await (await fetch(`${base}/plain/api/stats`)).json()).toMatchObject({ pending: 0 });
    expect(await (await fetch(`${base}/`)).text()).toBe('the app');
    expect(await (await fetch(`${base}/ops-not-ours`)).text()).toBe('still the app');
  });

  it('takes the WebSocket upgrade at /ops/inspect and refuses it elsewhere', async () => {
    const id = await engine.enqueue('work', { ms: 1 });
    await engine.result(id, { timeout: 5_000 });
    const frames: Array<{ sessionId?: string }> = [];
    const socket = new WebSocket(`${base.replace('http', 'ws')}/ops/inspect`);
    socket.on('message', (data) => frames.push(JSON.parse(String(data))));
    await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
    const second = await engine.enqueue('work', { ms: 1 });
    await expect.poll(() => frames.some((frame) => frame.sessionId?.endsWith(`:promise:${second}`)), { timeout: 5_000 }).toBe(true);
    socket.close();
    const elsewhere = new WebSocket(`${base.replace('http', 'ws')}/inspect`);
    await expect(new Promise((resolve, reject) => elsewhere.once('open', resolve).once('error', reject))).rejects.toThrow();
  });

  it.skipIf(!fs.existsSync(CHROMIUM))('loads the page at /ops/ in Chromium and shows live changes over the WebSocket', async () => {
    const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'promised-chromium-'));
    const browser = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'],
      viewport: { width: 1280, height: 900 },
    });
    try {
      const page = await browser.newPage();
      await page.goto(`${base}/ops`);
      expect(new URL(page.url()).pathname).toBe('/ops/');
      await page.locator('#live.on').waitFor({ timeout: 5_000 });
      // The page is not reloaded: a promise enqueued now appears, then completes, by the socket.
      await page.evaluate(() => ((globalThis as unknown as { notReloaded: boolean }).notReloaded = true));
      const id = await engine.enqueue('work', { ms: 600 });
      const row = page.locator(`#promise-table tr[data-id="${id}"]`);
      await expect.poll(() => row.locator('td.status').textContent(), { timeout: 5_000 }).toBe('in_progress');
      await expect.poll(() => row.locator('td.status').textContent(), { timeout: 5_000 }).toBe('completed');
      expect(await page.evaluate(() => (globalThis as unknown as { notReloaded?: boolean }).notReloaded)).toBe(true);
      fs.mkdirSync(OUTPUT, { recursive: true });
      await page.screenshot({ path: path.join(OUTPUT, 'dashboard-express.png') });
    } finally {
      await browser.close();
      fs.rmSync(profile, { recursive: true, force: true });
    }
  });
});
