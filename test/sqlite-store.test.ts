import fs from 'node:fs';
import BetterSqlite3 from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { openSqliteStore } from '../src/persistence/sqlite/open-sqlite-store.js';
import type { SqlStore } from '../src/persistence/sql-store.js';
import { migrations } from '../src/persistence/migrations.js';
import { sqliteSqlDialect } from '../src/persistence/sqlite/sqlite-sql-dialect.js';
import { buildStatementTable } from '../src/persistence/statement-table.js';
import { tempDbPath } from './helpers/temp-db.js';

// The behaviour every store shares is tested once, over SQLite and PostgreSQL, in
// store-contract.test.ts; this file keeps what only SQLite has.
const stores: SqlStore[] = [];
afterEach(async () => {
  for (const store of stores.splice(0)) await store.close();
});

describe('SQLite store', () => {
  it('uses WAL, records every migration, and reopening migrates nothing', async () => {
    const file = tempDbPath();
    const store = await openSqliteStore({ filename: file, changeCheckIntervalMs: 0 });
    stores.push(store);
    expect(await store.execute('pragma journal_mode')).toEqual([{ journal_mode: 'wal' }]);
    await store.close();
    stores.pop();
    const again = await openSqliteStore({ filename: file, changeCheckIntervalMs: 0 });
    stores.push(again);
    const applied = (await again.execute('select name from promised_migration order by name')) as Array<{ name: string }>;
    expect(applied.map((row) => row.name)).toEqual(Object.keys(migrations).sort());
  });
});

describe('SQLite durability setting', () => {
  it('createEngine({ synchronous }) reaches the connection: NORMAL by default, FULL when asked', async () => {
    const { createEngine } = await import('../src/index.js');
    for (const [option, expected] of [[undefined, 1], ['FULL', 2]] as const) {
      const engine = await createEngine({ database: tempDbPath(), changeCheckIntervalMs: 0, cleanupIntervalMs: 0, ...(option ? { synchronous: option } : {}) });
      try {
        const store = engine.store as unknown as SqlStore;
        expect(await store.execute('pragma synchronous')).toEqual([{ synchronous: expected }]);
      } finally {
        await engine.stop();
      }
    }
  });
});

describe('SQLite WAL checkpoints', () => {
  it('run on a background thread once started: the commit path never checkpoints, and the WAL stays bounded', async () => {
    const file = tempDbPath();
    const store = await openSqliteStore({ filename: file, changeCheckIntervalMs: 0 });
    stores.push(store);
    await store.startMaintenance();
    expect(await store.execute('pragma wal_autocheckpoint')).toEqual([{ wal_autocheckpoint: 0 }]);
    const walSize = () => fs.statSync(`${file}-wal`).size;
    const writeRound = async () => {
      for (let i = 0; i < 1_500; i++) {
        await store.transaction(async (tx) => {
          tx.insertPromise({ type: 't', status: 'pending', priority: 0, payload: JSON.stringify({ i, pad: 'x'.repeat(200) }), maxAttempts: 1, runAt: 0, snapshot: '{}', idempotencyKey: null, errorCode: null, errorMessage: null, workflowId: null, invokeId: null, now: i });
        });
      }
      // Give the checkpointer (every 200 ms) a turn.
      await new Promise((resolve) => setTimeout(resolve, 600));
    };
    await writeRound();
    const afterOne = walSize();
    await writeRound();
    await writeRound();
    // Without checkpoints the WAL would hold all three rounds; checkpointed, it is reused.
    expect(walSize()).toBeLessThan(afterOne * 1.5);
  });
});

describe('SQLite edge reads', () => {
  it('read the dependency edges through their indexes, never a scan of the edge table', async () => {
    const file = tempDbPath();
    stores.push(await openSqliteStore({ filename: file, changeCheckIntervalMs: 0 }));
    const { dependencies } = buildStatementTable(sqliteSqlDialect);
    const db = new BetterSqlite3(file, { readonly: true });
    try {
      const plan = (statement: { sql: string; bind(args: never): unknown[] }, args: object) =>
        (db.prepare(`explain query plan ${statement.sql}`).all(statement.bind(args as never)) as Array<{ detail: string }>).map((step) => step.detail).join('; ');
      // The primary key (parent_id, child_id) finds a parent's children.
      expect(plan(dependencies.childrenOf, { id: 1 })).toMatch(/SEARCH promise_dependencies USING COVERING INDEX sqlite_autoindex_promise_dependencies_1 \(parent_id=\?\)/);
      // promise_dependencies_child (child_id, parent_id) finds the parents of each child.
      expect(plan(dependencies.parentsOf, { id: 1 })).toMatch(/SEARCH promise_dependencies USING COVERING INDEX promise_dependencies_child \(child_id=\?\)/);
      expect(plan(dependencies.parentsOfMany, { ids: [1, 2, 3] })).toMatch(/SEARCH promise_dependencies USING COVERING INDEX promise_dependencies_child \(child_id=\?\)/);
    } finally {
      db.close();
    }
  });
});
