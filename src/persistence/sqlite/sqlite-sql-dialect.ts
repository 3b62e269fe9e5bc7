import { SqliteAdapter, SqliteQueryCompiler, sql } from 'kysely';
import { compileOnlyBuilder, type SqlDialect } from '../sql-dialect.js';

/**
 * SQLite's statements: one writer at a time (`BEGIN IMMEDIATE`), so no row locks and no
 * statement misses what a lock holder wrote; a list is bound as JSON text and read with `json_each`.
 */
export const sqliteSqlDialect: SqlDialect = {
  builder: compileOnlyBuilder(new SqliteAdapter(), () => new SqliteQueryCompiler()),
  rowLocks: false,
  snapshotPerStatement: false,
  inList: (column, list) => sql<boolean>`${sql.ref(column)} in (select value from json_each(${list}))`,
  encodeList: (list) => JSON.stringify(list),
};
