import { afterEach, describe, expect, inject, it } from 'vitest';
import { openPostgresStore } from '../src/persistence/postgres/open-postgres-store.js';
import { openSqliteStore } from '../src/persistence/sqlite/open-sqlite-store.js';
import type { NewPromise, StateUpdate, Store } from '../src/persistence/store.js';
import { createFreshDatabase } from './helpers/postgres.js';
import { tempDbPath } from './helpers/temp-db.js';
import { until } from './helpers/wait.js';

// The Store contract, written once and run over every backend (SQLite and PostgreSQL): what the
// engine relies on, whatever the dialect.

type TestStore = Store & { execute(statement: string): Promise<unknown[]> };

interface Backend {
  name: string;
  skip: string | false;
  /**
   * Whether two connections in one process may run transactions at the same time. Not SQLite:
   * better-sqlite3 waits for the write lock synchronously, blocking the event loop that the
   * holder needs to commit, so concurrent transactions are tested there on one connection.
   */
  concurrentConnections: boolean;
  /** A fresh, empty database; `open` opens a connection to it (several may be open at once). */
  fresh(): Promise<{ open(options?: { watch?: boolean }): Promise<TestStore> }>;
}

const adminUrl = inject('postgresAdminUrl');

const backends: Backend[] = [
  {
    name: 'SQLite',
    skip: false,
    concurrentConnections: false,
    async fresh() {
      const file = tempDbPath();
      return { open: ({ watch = false } = {}) => openSqliteStore({ filename: file, changeCheckIntervalMs: watch ? 5 : 0 }) };
    },
  },
  {
    name: 'PostgreSQL',
    skip: adminUrl ? false : inject('postgresSkipReason'),
    concurrentConnections: true,
    async fresh() {
      const url = await createFreshDatabase(adminUrl!);
      return { open: () => openPostgresStore({ connectionString: url }) };
    },
  },
];

const stores: Store[] = [];
afterEach(async () => {
  for (const store of stores.splice(0)) await store.close();
});

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

const relatives = (parentId: number) => ({ parentId, toStatus: 'pending', snapshot: '"p"', errorCode: null, errorMessage: null, expiresAt: null, now: 5 });

for (const backend of backends) {
  if (backend.skip) console.warn(`${backend.name} store contract skipped: ${backend.skip}`);

  describe.skipIf(backend.skip)(`Store contract: ${backend.name}`, () => {
    async function open() {
      const database = await backend.fresh();
      const store = await database.open();
      stores.push(store);
      return store;
    }

    /** Two stores on one database, for transactions that race (one store where they cannot). */
    async function openPair() {
      const database = await backend.fresh();
      const one = await database.open();
      stores.push(one);
      if (!backend.concurrentConnections) return [one, one] as const;
      const two = await database.open();
      stores.push(two);
      return [one, two] as const;
    }

    it('migrates once: reopening applies nothing new', async () => {
      const database = await backend.fresh();
      const first = await database.open();
      await first.close();
      const again = await database.open();
      stores.push(again);
      expect(await again.execute('select name from promised_migration order by name')).toEqual([
        { name: '0001_promises' },
        { name: '0002_lifecycle' },
        { name: '0003_workflows' },
        { name: '0004_drop_status_type_index' },
        { name: '0005_lease_losses' },
        { name: '0006_flow_control' },
        { name: '0007_workflow_history' },
        { name: '0008_trace_context' },
        { name: '0009_debounce_batch_deadlines' },
      ]);
    });

    it('claims due rows by priority, then run-at, and only of the given types', async () => {
      const store = await open();
      const ids = await store.transaction(async (tx) => [
        await tx.insertPromise(row({ priority: 1, runAt: 5 })),
        await tx.insertPromise(row({ priority: 9, runAt: 5 })),
        await tx.insertPromise(row({ priority: 9, runAt: 1 })),
        await tx.insertPromise(row({ priority: 100, runAt: 50 })), // not due yet
        await tx.insertPromise(row({ type: 'other', priority: 100 })), // not ours
      ]);
      const claimed = await store.transaction(async (tx) => tx.claimDue({ ...claimRequest, limit: 2 }));
      expect(claimed.map((c) => c.id)).toEqual([ids[2], ids[1]]);
      expect(claimed.every((c) => c.attempts === 1 && c.lease_token === 1)).toBe(true);
      expect(typeof claimed[0]!.run_at).toBe('number');
      const rest = await store.transaction(async (tx) => tx.claimDue(claimRequest));
      expect(rest.map((c) => c.id)).toEqual([ids[0]]);
    });

    it('returns a claim of many rows in claim order', async () => {
      const store = await open();
      await store.transaction(async (tx) => {
        for (let i = 0; i < 30; i++) await tx.insertPromise(row({ priority: i % 3, runAt: (i * 7) % 5 }));
      });
      const claimed = await store.transaction(async (tx) => tx.claimDue({ ...claimRequest, limit: 30 }));
      const expected = [...claimed].sort((a, b) => b.priority - a.priority || a.run_at - b.run_at || a.id - b.id);
      expect(claimed.map((c) => c.id)).toEqual(expected.map((c) => c.id));
      expect(claimed).toHaveLength(30);
    });

    it('reads rows back with numbers as numbers', async () => {
      const store = await open();
      const id = await store.transaction(async (tx) => tx.insertPromise(row({ runAt: 1_700_000_000_123, idempotencyKey: 'k1' })));
      const stored = await store.getPromise(id);
      expect(stored).toMatchObject({ id, run_at: 1_700_000_000_123, created_at: 1, attempts: 0, lease_token: 0, result: null, idempotency_key: 'k1' });
      expect(await store.countByStatusAndType()).toEqual([{ status: 'pending', type: 't', count: 1 }]);
      expect(await store.nextRunAt(['t'], 0)).toBe(1_700_000_000_123);
      expect(await store.nextRunAt(['t'], 1_700_000_000_123)).toBeNull();
      expect(await store.nextRunAt(['other'], 0)).toBeNull();
      expect(await store.transaction(async (tx) => tx.keyHolder('k1'))).toEqual({ id, completed_at: null, key_ttl: null });
      expect(await store.listPromises({ limit: 10, status: 'pending' })).toEqual([stored]);
      expect(await store.listPromises({ limit: 10 })).toEqual([stored]);
      expect(await store.listPromises({ limit: 10, status: 'pending', type: 't' })).toEqual([stored]);
      expect(await store.listPromises({ limit: 10, type: 'other' })).toEqual([]);
      expect(await store.listPromises({ limit: 10, status: 'failed' })).toEqual([]);
    });

    it('a completion presenting a stale fencing token changes nothing', async () => {
      const store = await open();
      const id = await store.transaction(async (tx) => tx.insertPromise(row()));
      const [first] = await store.transaction(async (tx) => tx.claimDue(claimRequest));
      // The lease is lost and the promise goes back to pending (token bumped), then claimed again.
      const lost = await store.transaction(async (tx) =>
        tx.updateState({ ...complete(id, first!.lease_token), toStatus: 'pending', result: null, completedAt: null, errorCode: 'LEASE_EXPIRED' }),
      );
      expect(lost).toBe(true);
      const [second] = await store.transaction(async (tx) => tx.claimDue({ ...claimRequest, owner: 'w2' }));
      expect(second!.lease_token).toBeGreaterThan(first!.lease_token);
      expect(await store.transaction(async (tx) => tx.updateState(complete(id, first!.lease_token)))).toBe(false);
      expect(await store.getPromise(id)).toMatchObject({ status: 'in_progress', lease_owner: 'w2', result: null });
      expect(await store.transaction(async (tx) => tx.updateState(complete(id, second!.lease_token)))).toBe(true);
      expect(await store.getPromise(id)).toMatchObject({ status: 'completed', result: '42', lease_owner: null });
    });

    it('an update without a fencing token applies while the row is in the expected state', async () => {
      const store = await open();
      const id = await store.transaction(async (tx) => tx.insertPromise(row()));
      const cancel = { ...complete(id, 0), fromStatus: 'pending', leaseToken: null, toStatus: 'failed', result: null, errorCode: 'CANCELLED', errorMessage: 'x' };
      expect(await store.transaction(async (tx) => tx.updateState(cancel))).toBe(true);
      expect(await store.transaction(async (tx) => tx.updateState(cancel))).toBe(false);
      expect(await store.getPromise(id)).toMatchObject({ status: 'failed', error_code: 'CANCELLED', completed_at: 20 });
    });

    it('releases a child only when all its parents completed, and fails descendants transitively', async () => {
      const store = await open();
      const [a, b, child, grandchild] = await store.transaction(async (tx) => {
        const a = await tx.insertPromise(row({ status: 'completed' }));
        const b = await tx.insertPromise(row());
        const child = await tx.insertPromise(row({ status: 'waiting' }));
        const grandchild = await tx.insertPromise(row({ status: 'waiting' }));
        await tx.insertDependency(a, child);
        await tx.insertDependency(b, child);
        await tx.insertDependency(child, grandchild);
        return [a, b, child, grandchild];
      });
      expect(await store.transaction(async (tx) => tx.releaseReadyChildren(relatives(a!)))).toEqual([]);
      const failed = await store.transaction(async (tx) =>
        tx.failWaitingDescendants({ ...relatives(b!), toStatus: 'failed', errorCode: 'DEPENDENCY_FAILED', errorMessage: 'x' }),
      );
      expect(failed.map((r) => r.id).sort()).toEqual([child, grandchild].sort());
      expect(await store.getPromise(grandchild!)).toMatchObject({ status: 'failed', error_code: 'DEPENDENCY_FAILED', completed_at: 5 });
      expect(await store.dependenciesOf(child!)).toEqual([a, b]);
    });

    it('reads the edges both ways: parents of many ids in one read, and the children of one', async () => {
      const store = await open();
      const [a, b, c, d] = await store.transaction(async (tx) => {
        const ids = [];
        for (let i = 0; i < 4; i++) ids.push(await tx.insertPromise(row({ status: i < 2 ? 'pending' : 'waiting' })));
        const [a, b, c, d] = ids as [number, number, number, number];
        await tx.insertDependency(b, c);
        await tx.insertDependency(a, c);
        await tx.insertDependency(a, d);
        await tx.insertDependency(c, d);
        return ids;
      });
      expect(await store.dependenciesOfMany([d!, c!, a!])).toEqual(
        new Map([
          [d, [a, c]],
          [c, [a, b]],
          [a, []],
        ]),
      );
      expect(await store.dependenciesOfMany([])).toEqual(new Map());
      expect(await store.childrenOf(a!)).toEqual([c, d]);
      expect(await store.childrenOf(d!)).toEqual([]);
      expect(await store.dependenciesOf(d!)).toEqual([a, c]);
    });

    it('two parents completing at once release their common child exactly once', async () => {
      const [one, two] = await openPair();
      for (let round = 0; round < 5; round++) {
        const [a, b, child] = await one.transaction(async (tx) => {
          const a = await tx.insertPromise(row({ type: `r${round}` }));
          const b = await tx.insertPromise(row({ type: `r${round}` }));
          const child = await tx.insertPromise(row({ status: 'waiting', type: `c${round}` }));
          await tx.insertDependency(a, child);
          await tx.insertDependency(b, child);
          return [a, b, child];
        });
        const [claimA, claimB] = await one.transaction(async (tx) => tx.claimDue({ ...claimRequest, types: [`r${round}`] }));
        const finish = (store: Store, claim: typeof claimA) =>
          store.transaction(async (tx) => {
            expect(await tx.updateState(complete(claim!.id, claim!.lease_token))).toBe(true);
            return tx.releaseReadyChildren(relatives(claim!.id));
          });
        const [releasedA, releasedB] = await Promise.all([finish(one, claimA), finish(two, claimB)]);
        expect([...releasedA, ...releasedB].map((r) => r.id)).toEqual([child]);
        expect(await one.getPromise(child!)).toMatchObject({ status: 'pending' });
        expect([a, b]).toContain(claimA!.id);
      }
    });

    it('two claimers at once never get the same row', async () => {
      const [one, two] = await openPair();
      await one.transaction(async (tx) => {
        for (let i = 0; i < 200; i++) await tx.insertPromise(row());
      });
      const claimed: number[] = [];
      const claimer = async (store: Store, owner: string) => {
        for (;;) {
          const rows = await store.transaction(async (tx) => tx.claimDue({ ...claimRequest, owner, limit: 7 }));
          if (rows.length === 0) return;
          claimed.push(...rows.map((r) => r.id));
        }
      };
      await Promise.all([claimer(one, 'a'), claimer(two, 'b'), claimer(one, 'c'), claimer(two, 'd')]);
      expect(claimed).toHaveLength(200);
      expect(new Set(claimed).size).toBe(200);
    });

    it('renews leases, finds expired ones, and fences progress', async () => {
      const store = await open();
      const id = await store.transaction(async (tx) => tx.insertPromise(row()));
      const [claim] = await store.transaction(async (tx) => tx.claimDue(claimRequest));
      expect(await store.nextLeaseExpiry()).toBe(100);
      expect(await store.transaction(async (tx) => tx.renewLeases('w1', 500, 50))).toEqual([{ id, lease_token: claim!.lease_token }]);
      expect(await store.transaction(async (tx) => tx.expiredLeases(400, 10))).toEqual([]);
      const [expired] = await store.transaction(async (tx) => tx.expiredLeases(600, 10));
      expect(expired).toMatchObject({ id, lease_owner: 'w1', attempts: 1, lease_losses: 0 });
      expect(await store.transaction(async (tx) => tx.leasesOwnedBy('w1'))).toHaveLength(1);
      expect(await store.transaction(async (tx) => tx.saveProgress(id, claim!.lease_token, 0.5, 2, 60))).toBe(true);
      expect(await store.transaction(async (tx) => tx.saveProgress(id, claim!.lease_token + 1, 1, 2, 60))).toBe(false);
      expect(await store.getPromise(id)).toMatchObject({ progress_current: 0.5, progress_total: 2 });
    });

    it('keeps history, dead letters and schedules', async () => {
      const store = await open();
      const id = await store.transaction(async (tx) => tx.insertPromise(row()));
      await store.transaction(async (tx) => {
        await tx.insertHistory({ promiseId: id, event: 'FAIL', from: 'in_progress', to: 'failed', attempt: 1, errorCode: 'E', errorMessage: 'boom', at: 7 });
        await tx.insertDeadLetter(id, 'E', 'boom', 8);
      });
      expect(await store.historyOf(id)).toMatchObject([{ promise_id: id, event: 'FAIL', error_code: 'E', at: 7 }]);
      expect(await store.listDeadLetters(10)).toMatchObject([{ promise_id: id, type: 't', error_code: 'E', failed_at: 8, created_at: 1 }]);
      expect(await store.countDeadLetters()).toBe(1);
      await store.transaction(async (tx) => tx.upsertSchedule('nightly', '0 3 * * *', null, 1));
      // Of two processes firing the same due time, one advances it.
      expect(await store.transaction(async (tx) => tx.advanceSchedule('nightly', 1000, 2))).toBe(true);
      expect(await store.transaction(async (tx) => tx.advanceSchedule('nightly', 1000, 3))).toBe(false);
      expect(await store.transaction(async (tx) => tx.getSchedule('nightly'))).toMatchObject({ cron: '0 3 * * *', last_due_at: 1000 });
      expect(await store.transaction(async (tx) => tx.clearDeadLetters())).toBe(1);
    });

    it('stores workflows, their events and timers', async () => {
      const store = await open();
      const workflowId = await store.transaction(async (tx) => (await tx.insertWorkflow({ name: 'w', input: '{}', snapshot: '{}', version: 'v1', parentStepId: null, now: 1 }))!);
      await store.transaction(async (tx) => {
        const eventId = await tx.insertWorkflowEvent({ workflowId, event: '{"type":"GO"}', type: 'GO', key: null, outcome: 'kept', appliedAt: null, expiresAt: 10, now: 2 });
        expect(await tx.keptWorkflowEvents(workflowId, 3)).toMatchObject([{ id: eventId, event: '{"type":"GO"}' }]);
        await tx.markWorkflowEventApplied(eventId, 3);
        expect(await tx.keptWorkflowEvents(workflowId, 3)).toEqual([]);
        await tx.upsertWorkflowTimer({ workflowId, timerId: 'after', event: '{}', fireAt: 50, now: 3 });
        await tx.insertPromise(row({ workflowId, invokeId: 'step' }));
      });
      expect(await store.nextWorkflowTimerAt()).toBe(50);
      expect(await store.runningWorkflows()).toEqual([{ id: workflowId, name: 'w', version: 'v1' }]);
      expect(await store.stepsOf(workflowId)).toHaveLength(1);
      expect(await store.transaction(async (tx) => tx.deleteWorkflowTimer(workflowId, 'after'))).toBe(true);
      expect(await store.transaction(async (tx) => tx.deleteWorkflowTimer(workflowId, 'after'))).toBe(false);
      expect(await store.listWorkflows({ limit: 5, status: 'running' })).toMatchObject([{ id: workflowId, name: 'w' }]);
      expect(await store.listWorkflows({ limit: 5, name: 'w' })).toMatchObject([{ id: workflowId }]);
      expect(await store.listWorkflows({ limit: 5, status: 'completed' })).toEqual([]);
      expect(await store.listWorkflows({ limit: 5, status: 'running', name: 'other' })).toEqual([]);
    });

    it('a transaction that throws leaves nothing behind', async () => {
      const store = await open();
      await expect(
        store.transaction(async (tx) => {
          await tx.insertPromise(row());
          throw new Error('changed my mind');
        }),
      ).rejects.toThrow('changed my mind');
      expect(await store.countByStatusAndType()).toEqual([]);
    });

    it('reports writes made by another connection, not its own', async () => {
      const database = await backend.fresh();
      const watcher = await database.open({ watch: true });
      const writer = await database.open();
      stores.push(watcher, writer);
      let changes = 0;
      const unsubscribe = watcher.onExternalChange(() => changes++);
      // A PostgreSQL listener reports once when it (re)connects: it may have missed notifications.
      await new Promise((resolve) => setTimeout(resolve, 100));
      const before = changes;
      await writer.transaction(async (tx) => tx.insertPromise(row()));
      await until(() => changes > before, 5_000, 'a change from the other connection');
      const after = changes;
      await watcher.transaction(async (tx) => tx.insertPromise(row()));
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(changes).toBe(after);
      unsubscribe();
    });
  });
}
