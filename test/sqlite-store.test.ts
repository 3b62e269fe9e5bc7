import { afterEach, describe, expect, it } from 'vitest';
import { openSqliteStore } from '../src/persistence/sqlite/open-sqlite-store.js';
import type { SqliteStore } from '../src/persistence/sqlite/sqlite-store.js';
import { migrations } from '../src/persistence/migrations.js';
import { tempDbPath } from './helpers/temp-db.js';

// The behaviour every store shares is tested once, over SQLite and PostgreSQL, in
// store-contract.test.ts; this file keeps what only SQLite has.
const stores: SqliteStore[] = [];
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
