// `promised dashboard --port N`, the real command in a child process: it serves the page, the JSON
// API and the inspection hub on 127.0.0.1, and closes on SIGTERM with exit code 0.
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { createEngine } from '../src/index.js';
import { spawnCli, stopChild } from './fixtures/cli-run.js';
import { freePort } from './helpers/postgres.js';
import { tempDbPath } from './helpers/temp-db.js';
import { until } from './helpers/wait.js';

const children: Array<ReturnType<typeof spawnCli>> = [];
afterEach(() => {
  for (const dashboard of children.splice(0)) stopChild(dashboard.child);
});

/** Whether something accepts TCP connections on 127.0.0.1:`port`. */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

describe('promised dashboard (the CLI)', () => {
  it('serves the page and the API on 127.0.0.1:N and stops on SIGTERM', async () => {
    const db = tempDbPath();
    const engine = await createEngine({ database: db });
    engine.task('review', async () => 'reviewed');
    const id = await engine.enqueue('review', { file: 'a.ts' });
    await engine.stop();

    const port = await freePort();
    const dashboard = spawnCli(['dashboard', '--db', db, '--port', String(port)]);
    children.push(dashboard);
    const base = `http://127.0.0.1:${port}/`;
    await until(() => dashboard.stdout().includes(`dashboard: ${base}`) || dashboard.child.exitCode !== null, 30_000, 'the dashboard to listen');
    expect(dashboard.stdout(), dashboard.stderr()).toContain(`dashboard: ${base}`);
    expect(dashboard.stdout()).toContain(`ws://127.0.0.1:${port}/inspect`);

    const page = await fetch(base);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await page.text()).toMatch(/<html/i);

    const list = await fetch(`${base}api/promises`);
    expect(list.status).toBe(200);
    const { promises, next } = (await list.json()) as { promises: Array<{ id: string; type: string; status: string }>; next: string | null };
    expect(promises).toEqual([expect.objectContaining({ id, type: 'review', status: 'pending' })]);
    expect(next).toBeNull();
    const detail = (await (await fetch(`${base}api/promises/${id}`)).json()) as { record: { payload: unknown } };
    expect(detail.record.payload).toEqual({ file: 'a.ts' });
    expect((await fetch(`${base}api/stats`)).status).toBe(200);

    // The hub on the same port: a viewer receives the stored promise's actor frame.
    const frames: Array<{ type: string; sessionId: string }> = [];
    const viewer = new WebSocket(`ws://127.0.0.1:${port}/inspect`);
    viewer.on('message', (data) => frames.push(JSON.parse(String(data)) as (typeof frames)[number]));
    await until(() => frames.some((frame) => frame.type === '@xstate.actor' && frame.sessionId.endsWith(`:promise:${id}`)), 10_000, 'the promise on the hub');
    viewer.terminate();

    dashboard.child.kill('SIGTERM');
    expect(await dashboard.exited).toBe(0);
    expect(await accepts(port)).toBe(false);
  });
});
