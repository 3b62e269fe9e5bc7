import { openSqliteStore, type SqliteSynchronous } from './sqlite/open-sqlite-store.js';
import type { Store } from './store.js';

export interface OpenStoreOptions {
  /** An SQLite file path or `':memory:'`, or a `postgres://` / `postgresql://` URL. */
  database: string;
  synchronous: SqliteSynchronous;
  changeCheckIntervalMs: number;
}

/** True when `database` names a PostgreSQL server rather than an SQLite file. */
export function isPostgresUrl(database: string): boolean {
  return /^postgres(ql)?:\/\//i.test(database);
}

/**
 * Opens the store that `database` names: the one place that chooses a dialect, so the engine
 * never asks which one it has.
 */
export async function openStore(options: OpenStoreOptions): Promise<Store> {
  if (isPostgresUrl(options.database)) {
    const { openPostgresStore } = await import('./postgres/open-postgres-store.js');
    // The same option that sets SQLite's change check paces PostgreSQL's change reports.
    return openPostgresStore({ connectionString: options.database, changeIntervalMs: options.changeCheckIntervalMs });
  }
  return openSqliteStore({ filename: options.database, synchronous: options.synchronous, changeCheckIntervalMs: options.changeCheckIntervalMs });
}
