import pg from 'pg';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { CHANGE_CHANNEL } from '../src/persistence/postgres/change-listener.js';
import { openPostgresStore } from '../src/persistence/postgres/open-postgres-store.js';
import type { NewPromise, StateUpdate, StoreTransaction } from '../src/persistence/store.js';
import { createFreshDatabase } from './helpers/postgres.js';
import { until } from './helpers/wait.js';

// On PostgreSQL a commit wakes other processes through a NOTIFY that the connection sends when a
// statement declared waking changed a row (see store-statements.test.ts for the declarations).
// Here: the commit of each such statement in one store wakes another store's listener, and a
// commit of quiet statements sends no notification at all.

const adminUrl = inject('postgresAdminUrl');

/** A promise of `type` in `status`, the only fields these cases vary. */
const promise = (type: string, status = 'pending', errorCode: string | null = null): NewPromise => ({
  type, status, errorCode, priority: 0, payload: '{}', maxAttempts: 3, runAt: 0, snapshot: '"s"', idempotencyKey: null, errorMessage: null, workflowId: null, invokeId: null, now: 1,
});

const move = (id: number, fromStatus: string, toStatus: string, extra: Partial<StateUpdate> = {}): StateUpdate => ({
  id,
  fromStatus,
  leaseToken: null,
  toStatus,
  snapshot: '"m"',
  result: null,
  errorCode: null,
  errorMessage: null,
  runAt: 5,
  attemptsRefund: 0,
  leaseLost: 0,
  resetAttempts: false,
  completedAt: null,
  expiresAt: null,
  now: 5,
  ...extra,
});

const relatives = (parentId: number, toStatus = 'pending') => ({ parentId, toStatus, snapshot: '"r"', errorCode: null, errorMessage: null, expiresAt: null, now: 5 });

/** A parent and one child (its dependent); returns the parent. */
const parentWithChild =
  (parent: [string, string | null], child: [string, string | null]) =>
  async (tx: StoreTransaction, type: string): Promise<number> => {
    const parentId = await tx.insertPromise(promise(type, ...parent));
    await tx.insertDependency(parentId, await tx.insertPromise(promise(type, ...child)));
    return parentId;
  };

const claim = (tx: StoreTransaction, type: string) =>
  tx.claimDue({ now: 10, dueBy: 10, limit: 1, types: [type], owner: 'w', leaseExpiresAt: 100, toStatus: 'in_progress', snapshot: '"c"' });

/** A promise claimed, so in progress; returns it. */
const claimed = async (tx: StoreTransaction, type: string): Promise<number> => {
  await tx.insertPromise(promise(type));
  return (await claim(tx, type))[0]!.id;
};

interface Case {
  name: string;
  wakes: boolean;
  /** Prepares rows (committed before anyone listens); returns the id the act works on. */
  setup(tx: StoreTransaction, type: string): Promise<number>;
  act(tx: StoreTransaction, id: number, type: string): Promise<unknown>;
}

const cases: Case[] = [
  { name: 'an enqueue', wakes: true, setup: async () => 0, act: (tx, _id, type) => Promise.resolve(tx.insertPromise(promise(type))) },
  {
    name: 'releasing the children of a completed parent',
    wakes: true,
    setup: parentWithChild(['completed', null], ['waiting', null]),
    act: async (tx, parent) => tx.releaseReadyChildren(relatives(parent)),
  },
  {
    name: 'releasing every ready waiting row on resume',
    wakes: true,
    setup: parentWithChild(['completed', null], ['waiting', null]),
    act: async (tx) => tx.releaseAllReadyWaiting({ toStatus: 'pending', snapshot: '"r"', errorCode: null, errorMessage: null, expiresAt: null, now: 5 }),
  },
  {
    name: 'a retry of a failed promise, reviving its descendants',
    wakes: true,
    setup: parentWithChild(['failed', 'E'], ['failed', 'DEPENDENCY_FAILED']),
    act: async (tx, parent) => {
      expect(await tx.updateState(move(parent, 'failed', 'pending', { resetAttempts: true }))).toBe(true);
      expect(await tx.reviveFailedDescendants(relatives(parent, 'waiting'))).toHaveLength(1);
    },
  },
  {
    name: 'reviving descendants alone',
    wakes: true,
    setup: parentWithChild(['pending', null], ['failed', 'DEPENDENCY_FAILED']),
    act: async (tx, parent) => expect(await tx.reviveFailedDescendants(relatives(parent, 'waiting'))).toHaveLength(1),
  },
  {
    name: 'a failure sent back to pending for its next attempt',
    wakes: true,
    setup: claimed,
    act: async (tx, id) => expect(await tx.updateState(move(id, 'in_progress', 'pending', { errorCode: 'E', errorMessage: 'boom' }))).toBe(true),
  },
  {
    name: 'a lost lease',
    wakes: true,
    setup: claimed,
    act: async (tx, id) => expect(await tx.updateState(move(id, 'in_progress', 'pending', { leaseLost: 1, errorCode: 'LEASE_EXPIRED' }))).toBe(true),
  },
  {
    name: 'a claim, its lease renewal, progress and history',
    wakes: false,
    setup: async (tx, type) => tx.insertPromise(promise(type)),
    act: async (tx, id, type) => {
      const [ownClaim] = await claim(tx, type);
      await tx.renewLeases('w', 200, 6);
      await tx.saveProgress(id, ownClaim!.lease_token, 1, 2, 6);
      await tx.insertHistory({ promiseId: id, event: 'NOTE', from: 'pending', to: 'in_progress', attempt: 1, errorCode: null, errorMessage: null, at: 6 });
    },
  },
  {
    name: 'a state change that lost its race (no row changed)',
    wakes: false,
    setup: async (tx, type) => tx.insertPromise(promise(type, 'completed')),
    act: async (tx, id) => expect(await tx.updateState(move(id, 'in_progress', 'pending'))).toBe(false),
  },
];

describe.skipIf(!adminUrl)('PostgreSQL wake-ups', () => {
  const cleanups: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it('a commit of each waking statement wakes another store; quiet statements notify no one', async () => {
    const url = await createFreshDatabase(adminUrl!);
    const writer = await openPostgresStore({ connectionString: url });
    const watcher = await openPostgresStore({ connectionString: url, changeIntervalMs: 0 });
    cleanups.push(() => writer.close(), () => watcher.close());
    for (const [index, { name, wakes, setup, act }] of cases.entries()) {
      const type = `case${index}`;
      const id = await writer.transaction((tx) => setup(tx, type));
      // Listening starts after the setup committed, so its notification reaches no one here.
      const raw = new pg.Client({ connectionString: url });
      await raw.connect();
      const heard: string[] = [];
      raw.on('notification', (message) => heard.push(message.payload ?? ''));
      await raw.query(`listen ${CHANGE_CHANNEL}`);
      let changes = 0;
      const unsubscribe = watcher.onExternalChange(() => changes++);
      // A listener reports once when it connects: it may have missed notifications.
      await until(() => changes === 1, 5_000, `${name}: the watcher's first report`);
      await writer.transaction((tx) => act(tx, id, type));
      if (wakes) await until(() => changes > 1, 5_000, `${name}: the watcher woken by the writer's commit`);
      // Notifications arrive in commit order: once this one is heard, the act's would have been.
      await writer.execute(`select pg_notify('${CHANGE_CHANNEL}', 'barrier')`);
      await until(() => heard.includes('barrier'), 5_000, `${name}: the barrier notification`);
      expect(heard.slice(0, heard.indexOf('barrier')), name).toHaveLength(wakes ? 1 : 0);
      unsubscribe();
      await raw.end();
    }
  });
});
