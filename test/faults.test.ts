import { afterEach, describe, expect, it } from 'vitest';
import { createEngine, PromisedError, type Engine } from '../src/index.js';
import { kill, spawnFixture } from './helpers/child.js';
import { dumpDb } from './helpers/db-dump.js';
import { tempDbPath } from './helpers/temp-db.js';

const engines: Engine[] = [];
const children: Array<{ child: import('node:child_process').ChildProcess }> = [];
afterEach(async () => {
  for (const { child } of children.splice(0)) kill(child, 'SIGKILL');
  for (const engine of engines.splice(0)) await engine.stop();
});

describe('faults: a typed error or a retry, never a silent loss', () => {
  it('SQLITE_BUSY from another process holding the write lock past busy_timeout: the enqueue retries and lands', async () => {
    const file = tempDbPath();
    const engine = await createEngine({ database: file, changeCheckIntervalMs: 0 });
    engines.push(engine);
    engine.task('t', async () => 'ok');
    await engine.enqueue('t', {});
    // Held longer than the connection's 5 s busy_timeout: SQLite gives up with SQLITE_BUSY inside,
    // and the store's own retry loop must carry the write through.
    const holder = spawnFixture('lock-holder.ts', [file, '6500']);
    children.push(holder);
    await holder.waitForLine('locked');
    const began = Date.now();
    const id = await engine.enqueue('t', { during: 'the lock' });
    expect(Date.now() - began).toBeGreaterThanOrEqual(6_000);
    await holder.waitForLine('released');
    expect(await engine.get(id)).toMatchObject({ status: 'pending', payload: { during: 'the lock' } });
  });

  it('a full database: DATABASE_FULL, nothing half-written, and the engine carries on once there is room', async () => {
    const file = tempDbPath();
    const engine = await createEngine({ database: file, changeCheckIntervalMs: 0 });
    engines.push(engine);
    engine.task('t', async (payload: { blob: string }) => payload.blob.length);
    await engine.start();
    const first = await engine.enqueue('t', { blob: 'x' });
    await engine.result(first, { timeout: 5_000 });
    // A size-limited file: the page count it may grow to is capped just above its size now.
    const store = engine.store as unknown as { execute(sql: string): Promise<unknown[]> };
    const pages = ((await store.execute('pragma page_count')) as Array<{ page_count: number }>)[0]!.page_count;
    await store.execute(`pragma max_page_count = ${pages + 2}`);
    const before = dumpDb(file);
    const error = await engine.enqueueMany(Array.from({ length: 50 }, () => ({ type: 't', payload: { blob: 'y'.repeat(20_000) } }))).catch((thrown: unknown) => thrown);
    expect(error).toBeInstanceOf(PromisedError);
    expect((error as PromisedError).code).toBe('DATABASE_FULL');
    expect(dumpDb(file)).toEqual(before);
    // Room again: the same call succeeds and every promise runs.
    await store.execute('pragma max_page_count = 1073741823');
    const ids = await engine.enqueueMany(Array.from({ length: 50 }, () => ({ type: 't', payload: { blob: 'y'.repeat(20_000) } })));
    for (const id of ids) expect(await engine.result(id, { timeout: 5_000 })).toBe(20_000);
  });

  it('an outcome that cannot be committed (disk full) is retried, not lost, and commits once there is room', async () => {
    const file = tempDbPath();
    const engine = await createEngine({ database: file, changeCheckIntervalMs: 0 });
    engines.push(engine);
    const store = engine.store as unknown as { execute(sql: string): Promise<unknown[]> };
    let full = false;
    engine.task('big', async () => {
      // The disk fills up while the handler runs: its result cannot be stored yet.
      const pages = ((await store.execute('pragma page_count')) as Array<{ page_count: number }>)[0]!.page_count;
      await store.execute(`pragma max_page_count = ${pages}`);
      full = true;
      return 'z'.repeat(50_000);
    });
    const errors: string[] = [];
    engine.on('error', (error) => errors.push((error as PromisedError).code));
    await engine.start();
    const id = await engine.enqueue('big', {});
    await expect.poll(() => errors.includes('DATABASE_FULL'), { timeout: 5_000 }).toBe(true);
    expect(full).toBe(true);
    expect(await engine.get(id)).toMatchObject({ status: 'in_progress' });
    await store.execute('pragma max_page_count = 1073741823');
    expect(await engine.result<string>(id, { timeout: 5_000 })).toHaveLength(50_000);
    expect(await engine.get(id)).toMatchObject({ status: 'completed', attempts: 1 });
  });
});
