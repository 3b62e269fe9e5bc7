import BetterSqlite3 from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { createEngine, type Engine } from '../src/index.js';
import { kill, spawnFixture } from './helpers/child.js';
import { tempDbPath } from './helpers/temp-db.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe('leases and fencing (real processes)', () => {
  it('a worker frozen past its lease cannot commit after another took the promise over', async () => {
    const file = tempDbPath();
    const seed = await createEngine({ database: file, changeCheckIntervalMs: 0 });
    seed.task('fenced', async () => undefined, { retries: 2 });
    const id = await seed.enqueue('fenced', {});
    await seed.stop();

    const stale = spawnFixture('fencing-worker.ts', [file, '300']);
    cleanups.push(() => kill(stale.child, 'SIGKILL'));
    await stale.waitForLine('started');
    // Frozen mid-handler: it can neither heartbeat nor finish. Its process is alive, so only
    // the lease's expiry can free the promise.
    kill(stale.child, 'SIGSTOP');
    cleanups.push(() => kill(stale.child, 'SIGCONT'));

    const rescuer: Engine = await createEngine({ database: file, leaseMs: 300, changeCheckIntervalMs: 20 });
    cleanups.push(() => rescuer.stop());
    rescuer.task('fenced', async () => ({ by: 'rescuer' }), { retries: 2, retryDelay: 0 });
    await rescuer.start();
    expect(await rescuer.result(id, { timeout: 10_000 })).toEqual({ by: 'rescuer' });
    const settled = await rescuer.get(id);
    expect(settled).toMatchObject({ status: 'completed', attempts: 2 });

    kill(stale.child, 'SIGCONT');
    // The thawed worker finishes its handler and stops, committing whatever it may.
    await stale.waitForLine('stopped');
    expect(await stale.exited).toBe(0);

    const raw = new BetterSqlite3(file, { readonly: true });
    const row = raw.prepare('select status, result, completed_at, attempts from promises where id = ?').get(Number(id)) as Record<string, unknown>;
    raw.close();
    expect(row.status).toBe('completed');
    expect(JSON.parse(row.result as string)).toEqual({ by: 'rescuer' });
    // The final state was written once: the late worker changed nothing.
    expect(row.completed_at).toBe(settled!.completedAt!.getTime());
    expect(row.attempts).toBe(2);
  });
});
