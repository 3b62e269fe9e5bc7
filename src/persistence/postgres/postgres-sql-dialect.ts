import { PostgresAdapter, sql } from 'kysely';
import { compileOnlyBuilder, type SqlDialect } from '../sql-dialect.js';
import { IdentityPostgresQueryCompiler } from './postgres-dialect.js';

/**
 * PostgreSQL's statements: transactions write at once under READ COMMITTED, so statements take
 * the row locks they declare, and a sweep that may have waited on one is repeated; a list is
 * bound as an array and read with `= any(…)`.
 */
export const postgresSqlDialect: SqlDialect = {
  builder: compileOnlyBuilder(new PostgresAdapter(), () => new IdentityPostgresQueryCompiler()),
  rowLocks: true,
  snapshotPerStatement: true,
  inList: (column, list) => sql<boolean>`${sql.ref(column)} = any(${list})`,
  encodeList: (list) => list,
};
