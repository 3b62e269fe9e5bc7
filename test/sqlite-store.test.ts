import { afterEach, describe, expect, it } from 'vitest';
import { openSqliteStore } from '../src/persistence/sqlite/open-sqlite-store.js';
import type { SqliteStore } from '../src/persistence/sqlite/sqlite-store.js';
import type { NewPromise, StateUpdate } from '../src/persistence/store.js';
import { tempDbPath } from './helpers/temp-db.js';

const stores: SqliteStore[] = [];
afterEach(async () => {
  for (const store of stores.splice(0)) await store.close();
});

async function open(file = tempDbPath()) {
  const store = await openSqliteStore({ filename: file, changeCheckIntervalMs: 0 });
  stores.push(store);
  return store;
}

const row = (overrides: Partial<NewPromise> = {}): NewPromise => ({
  type: 't',
  status: 'pending',
  priority: 0,
  payload: '{}',
  maxAttempts: 3,
  runAt: 0,
  snapshot: '"s"',
  idempotencyKey: null,
  errorCode: null,
  errorMessage: null,
  workflowId: null,
  invokeId: null,
  now: 1,
  ...overrides,
});

const claimRequest = { now: 10, dueBy: 10, limit: 10, types: ['t'], owner: 'w1', leaseExpiresAt: 100, toStatus: 'in_progress', snapshot: '"c"' };

const complete = (id: number, leaseToken: number): StateUpdate => ({
  id,
  fromStatus: 'in_progress',
  leaseToken,
  toStatus: 'completed',
  snapshot: '"done"',
  result: '42',
  errorCode: null,
  errorMessage: null,
  runAt: null,
  attemptsRefund: 0,
  leaseLost: 0,
  resetAttempts: false,
  completedAt: 20,
  expiresAt: null,
  now: 20,
});

describe('SQLite store', () => {
  it('uses WAL, and migrating twice is a no-op', async () => {
    const file = tempDbPath();
    const store = await open(file);
    expect(await store.execute('pragma journal_mode')).toEqual([{ journal_mode: 'wal' }]);
    await store.close();
    stores.pop();
    const again = await open(file);
    expect(await again.execute('select name from promised_migration order by name')).toEqual([{ name: '0001_promises' }, { name: '0002_lifecycle' }, { name: '0003_workflows' }, { name: '0004_drop_status_type_index' }, { name: '0005_lease_losses' }]);
  });

  it('claims due rows by priority, then run-at, and only of the given types', async () => {
    const store = await open();
    const ids = await store.transaction(async (tx) => [
      tx.insertPromise(row({ priority: 1, runAt: 5 })),
      tx.insertPromise(row({ priority: 9, runAt: 5 })),
      tx.insertPromise(row({ priority: 9, runAt: 1 })),
      tx.insertPromise(row({ priority: 100, runAt: 50 })), // not due yet
      tx.insertPromise(row({ type: 'other', priority: 100 })), // not ours
    ]);
    const claimed = await store.transaction(async (tx) => tx.claimDue({ ...claimRequest, limit: 2 }));
    expect(claimed.map((c) => c.id)).toEqual([ids[2], ids[1]]);
    expect(claimed.every((c) => c.attempts === 1 && c.lease_token === 1)).toBe(true);
    const rest = await store.transaction(async (tx) => tx.claimDue(claimRequest));
    expect(rest.map((c) => c.id)).toEqual([ids[0]]);
  });

  it('a completion presenting a stale fencing token changes nothing', async () => {
    const store = await open();
    const id = (await store.transaction(async (tx) => tx.insertPromise(row()))) as number;
    const [first] = await store.transaction(async (tx) => tx.claimDue(claimRequest));
    // The lease is lost and the promise goes back to pending (token bumped), then claimed again.
    const lost = await store.transaction(async (tx) =>
      tx.updateState({ ...complete(id, first!.lease_token), toStatus: 'pending', result: null, completedAt: null, errorCode: 'LEASE_EXPIRED' }),
    );
    expect(lost).toBe(true);
    const [second] = await store.transaction(async (tx) => tx.claimDue({ ...claimRequest, owner: 'w2' }));
    expect(second!.lease_token).toBeGreaterThan(first!.lease_token);
    expect(await store.transaction(async (tx) => tx.updateState(complete(id, first!.lease_token)))).toBe(false);
    expect(store.getPromise(id)).toMatchObject({ status: 'in_progress', lease_owner: 'w2', result: null });
    expect(await store.transaction(async (tx) => tx.updateState(complete(id, second!.lease_token)))).toBe(true);
    expect(store.getPromise(id)).toMatchObject({ status: 'completed', result: '42', lease_owner: null });
  });

  it('releases a child only when all its parents completed, and fails descendants transitively', async () => {
    const store = await open();
    const [a, b, child, grandchild] = await store.transaction(async (tx) => {
      const a = tx.insertPromise(row({ status: 'completed' })) as number;
      const b = tx.insertPromise(row()) as number;
      const child = tx.insertPromise(row({ status: 'waiting' })) as number;
      const grandchild = tx.insertPromise(row({ status: 'waiting' })) as number;
      tx.insertDependency(a, child);
      tx.insertDependency(b, child);
      tx.insertDependency(child, grandchild);
      return [a, b, child, grandchild];
    });
    const update = { parentId: a!, toStatus: 'pending', snapshot: '"p"', errorCode: null, errorMessage: null, expiresAt: null, now: 5 };
    expect(await store.transaction(async (tx) => tx.releaseReadyChildren(update))).toEqual([]);
    const failed = await store.transaction(async (tx) =>
      tx.failWaitingDescendants({ ...update, parentId: b!, toStatus: 'failed', errorCode: 'DEPENDENCY_FAILED', errorMessage: 'x' }),
    );
    expect(failed.map((r) => r.id).sort()).toEqual([child, grandchild].sort());
    expect(store.getPromise(grandchild!)).toMatchObject({ status: 'failed', error_code: 'DEPENDENCY_FAILED', completed_at: 5 });
  });

  it('a transaction that throws leaves nothing behind', async () => {
    const store = await open();
    await expect(
      store.transaction(async (tx) => {
        tx.insertPromise(row());
        throw new Error('changed my mind');
      }),
    ).rejects.toThrow('changed my mind');
    expect(store.countByStatus()).toEqual({});
  });

  it('reports writes made by another connection', async () => {
    const file = tempDbPath();
    const watcher = await openSqliteStore({ filename: file, changeCheckIntervalMs: 5 });
    stores.push(watcher);
    const writer = await open(file);
    let changes = 0;
    const unsubscribe = watcher.onExternalChange(() => changes++);
    await writer.transaction(async (tx) => tx.insertPromise(row()));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(changes).toBeGreaterThanOrEqual(1);
    // Its own writes do not count.
    const before = changes;
    await watcher.transaction(async (tx) => tx.insertPromise(row()));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(changes).toBe(before);
    unsubscribe();
  });
});
