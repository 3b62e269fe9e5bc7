import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createEngine, type Engine } from '../src/index.js';
import { runCli } from './fixtures/cli-run.js';
import { tempDir } from './helpers/temp-db.js';

// `promised pause TYPE` / `promised resume TYPE`: the real command against a database a running
// engine works on.

const engines: Engine[] = [];
afterEach(async () => {
  for (const engine of engines.splice(0)) await engine.stop();
});

describe('promised pause / resume', () => {
  it('pauses a type for every process and resumes it; stats says which types are paused', async () => {
    const db = path.join(tempDir(), 'promised.db');
    const engine = await createEngine({ database: db, changeCheckIntervalMs: 10 });
    engines.push(engine);
    const ran: number[] = [];
    engine.task('mail', async (payload: { n: number }) => void ran.push(payload.n));
    await engine.start();
    const paused = await runCli(['pause', 'mail', '--db', db]);
    expect(paused.code).toBe(0);
    expect(paused.stdout).toMatch(/paused mail/);
    const id = await engine.enqueue('mail', { n: 1 });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(ran).toEqual([]);
    const stats = await runCli(['stats', '--db', db]);
    expect(stats.stdout).toMatch(/paused \(no process claims them\): mail/);
    expect(JSON.parse((await runCli(['stats', '--json', '--db', db])).stdout).paused).toEqual(['mail']);
    expect((await runCli(['resume', 'mail', '--db', db])).code).toBe(0);
    await engine.result(id, { timeout: 10_000 });
    expect(ran).toEqual([1]);
    expect((await runCli(['pause', '', '--db', db])).code).toBe(2);
  });
});
