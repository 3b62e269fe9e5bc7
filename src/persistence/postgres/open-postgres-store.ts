import { Kysely } from 'kysely';
import { Migrator, type MigrationProvider } from 'kysely/migration';
import pg from 'pg';
import { DatabaseError } from '../../errors.js';
import { migrations, MIGRATION_LOCK_TABLE, MIGRATION_TABLE } from '../migrations.js';
import type { Database } from '../schema.js';
import { SqlStore } from '../sql-store.js';
import { PostgresConnection } from './postgres-connection.js';
import { PromisedPostgresDialect } from './postgres-dialect.js';
import { toOpenError } from './postgres-errors.js';

export interface PostgresStoreOptions {
  /** `postgres://user:password@host:port/database`. */
  connectionString: string;
  /**
   * Connections in the pool (one more is kept for LISTEN).
   * @defaultValue 10
   */
  poolSize?: number;
  /**
   * How long a transaction keeps retrying while the server cannot be reached (a restart, a
   * network cut) before the error reaches the caller, ms.
   * @defaultValue 30000
   */
  reconnectTimeoutMs?: number;
  /**
   * After a change by another process is reported (at once, through LISTEN/NOTIFY), further
   * reports during a burst come at most this often, ms; 0 reports every one.
   * @defaultValue 50
   */
  changeIntervalMs?: number;
}

const INT8 = 20;

// pg returns int8 (bigint columns, count(*), min() of them) as strings, since a JS number cannot
// hold all of int8. Our int8 values are millisecond times and counts, well inside 2^53; this
// parser is set for our connections only, not through pg's global type registry.
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8 && format !== 'binary' ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
};

/**
 * Opens a promised PostgreSQL database: checks that it is reachable, writable and ours (or
 * empty), and brings the schema up to date with Kysely's migrator (one transaction, under an
 * advisory lock, so several processes starting at once migrate it once).
 *
 * @example
 * ```ts
 * const store = await openPostgresStore({ connectionString: 'postgres://localhost/promised' });
 * ```
 */
export async function openPostgresStore(options: PostgresStoreOptions): Promise<SqlStore> {
  const where = describe(options.connectionString);
  const clientConfig: pg.ClientConfig = { connectionString: options.connectionString, types, connectionTimeoutMillis: 10_000 };
  const pool = new pg.Pool({ ...clientConfig, max: options.poolSize ?? 10 });
  // An idle connection that breaks (server restart) is dropped from the pool; without a handler
  // its 'error' event would end the process.
  pool.on('error', () => {});
  try {
    const upToDate = await assertPromisedOrEmpty(pool, where);
    if (!upToDate) await migrate(pool);
  } catch (cause) {
    await pool.end().catch(() => {});
    throw toOpenError(cause, where);
  }
  const settings = { reconnectTimeoutMs: options.reconnectTimeoutMs ?? 30_000, listenerConfig: clientConfig, changeIntervalMs: options.changeIntervalMs ?? 50 };
  return new SqlStore(new PostgresConnection(pool, settings));
}

/** host:port/database, without the password. */
function describe(connectionString: string): string {
  try {
    const url = new URL(connectionString);
    return `${url.host}${url.pathname}`;
  } catch {
    return 'postgres://…';
  }
}

// A schema with tables but none of ours belongs to someone else: refuse it rather than add tables.
// Returns true when every migration is already applied.
async function assertPromisedOrEmpty(pool: pg.Pool, where: string): Promise<boolean> {
  const { rows } = await pool.query<{ name: string }>(`select table_name as name from information_schema.tables where table_schema = current_schema()`);
  const tables = rows.map((row) => row.name);
  if (tables.length === 0) return false;
  if (!tables.includes(MIGRATION_TABLE)) {
    throw new DatabaseError('DATABASE_NOT_PROMISED', `PostgreSQL database ${where} holds tables (${tables.slice(0, 5).join(', ')}) but is not a promised database`);
  }
  const applied = (await pool.query<{ name: string }>(`select name from ${MIGRATION_TABLE}`)).rows.map((row) => row.name);
  const unknown = applied.filter((name) => !(name in migrations));
  if (unknown.length > 0) {
    throw new DatabaseError('DATABASE_SCHEMA_TOO_NEW', `PostgreSQL database ${where} was migrated by a newer promised (migration ${unknown[0]}); upgrade promised to open it`);
  }
  return Object.keys(migrations).every((name) => applied.includes(name));
}

async function migrate(pool: pg.Pool): Promise<void> {
  // Kysely's destroy() would end the shared pool; the store owns it from here.
  const db = new Kysely<Database>({ dialect: new PromisedPostgresDialect({ pool }) });
  const provider: MigrationProvider = { getMigrations: async () => migrations };
  const migrator = new Migrator({ db, provider, migrationTableName: MIGRATION_TABLE, migrationLockTableName: MIGRATION_LOCK_TABLE });
  const { error } = await migrator.migrateToLatest();
  if (error) throw error;
}
