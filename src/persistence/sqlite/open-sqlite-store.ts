import fs from 'node:fs';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely } from 'kysely';
import { Migrator, type MigrationProvider } from 'kysely/migration';
import { DatabaseError } from '../../errors.js';
import { migrations, MIGRATION_LOCK_TABLE, MIGRATION_TABLE } from '../migrations.js';
import type { Database } from '../schema.js';
import { SqlStore } from '../sql-store.js';
import { SqliteConnection } from './sqlite-connection.js';
import { ImmediateSqliteDialect } from './sqlite-dialect.js';

/** How SQLite makes a commit durable (`PRAGMA synchronous`). */
export type SqliteSynchronous = 'NORMAL' | 'FULL';

export interface SqliteStoreOptions {
  /** A file path, or `':memory:'`. */
  filename: string;
  /**
   * `NORMAL` (default): in WAL mode a commit survives a crash of the process or of the OS
   * kernel's caller; power loss may roll back the last commits. `FULL`: fsync on every commit,
   * survives power loss, several times slower.
   */
  synchronous?: SqliteSynchronous;
  /** How long a writer waits for another process's lock before retrying, ms. */
  busyTimeoutMs?: number;
  /** How often to check `PRAGMA data_version` for writes by other processes, ms. */
  changeCheckIntervalMs?: number;
}

/**
 * Opens (creating if needed) a promised SQLite database: checks the path, sets WAL and the busy
 * timeout, and brings the schema up to date with Kysely's migrator inside one transaction.
 *
 * @example
 * ```ts
 * const store = await openSqliteStore({ filename: './promised.db' });
 * ```
 */
export async function openSqliteStore(options: SqliteStoreOptions): Promise<SqlStore> {
  const { filename } = options;
  if (filename !== ':memory:') assertWritablePath(filename);
  let connection: BetterSqlite3.Database;
  try {
    connection = new BetterSqlite3(filename);
  } catch (cause) {
    throw new DatabaseError('DATABASE_UNAVAILABLE', `cannot open SQLite database ${filename}: ${(cause as Error).message}`, { cause });
  }
  try {
    connection.pragma(`busy_timeout = ${options.busyTimeoutMs ?? 5_000}`);
    const upToDate = assertPromisedOrEmpty(connection, filename);
    connection.pragma('journal_mode = WAL');
    connection.pragma(`synchronous = ${options.synchronous ?? 'NORMAL'}`);
    connection.pragma('foreign_keys = ON');
    // Loading and running the migrator costs a short-lived CLI process (a git hook) ~15 ms.
    if (!upToDate) await migrate(connection);
  } catch (cause) {
    connection.close();
    if (cause instanceof DatabaseError) throw cause;
    const code = (cause as { code?: string }).code ?? '';
    if (code.startsWith('SQLITE_READONLY')) {
      throw new DatabaseError('DATABASE_READ_ONLY', `SQLite database ${filename} is read-only; promised needs to write to it`, { cause });
    }
    if (code === 'SQLITE_NOTADB') {
      throw new DatabaseError('DATABASE_NOT_PROMISED', `${filename} is not an SQLite database`, { cause });
    }
    throw new DatabaseError('DATABASE_UNAVAILABLE', `cannot prepare SQLite database ${filename}: ${(cause as Error).message}`, { cause });
  }
  return new SqlStore(new SqliteConnection(connection, { changeCheckIntervalMs: options.changeCheckIntervalMs ?? 50 }));
}

function assertWritablePath(filename: string): void {
  const directory = path.dirname(path.resolve(filename));
  if (!fs.existsSync(directory)) {
    throw new DatabaseError('DATABASE_DIRECTORY_MISSING', `folder ${directory} does not exist; create it before opening ${filename}`);
  }
  if (!fs.existsSync(filename)) return;
  // Mode bits, not access(2): a process running as root may write any file, but a file the
  // user marked read-only is meant to stay unchanged.
  const { mode } = fs.statSync(filename);
  if ((mode & 0o222) === 0) {
    throw new DatabaseError('DATABASE_READ_ONLY', `SQLite database ${filename} is read-only (mode ${(mode & 0o777).toString(8)}); make it writable`);
  }
}

// A file with tables but none of ours belongs to someone else: refuse it rather than add tables.
// Returns true when every migration is already applied.
function assertPromisedOrEmpty(connection: BetterSqlite3.Database, filename: string): boolean {
  const tables = connection
    .prepare(`select name from sqlite_master where type = 'table' and name not like 'sqlite_%'`)
    .pluck()
    .all() as string[];
  if (tables.length === 0) return false;
  if (!tables.includes(MIGRATION_TABLE)) {
    throw new DatabaseError('DATABASE_NOT_PROMISED', `${filename} holds tables (${tables.slice(0, 5).join(', ')}) but is not a promised database`);
  }
  const applied = connection.prepare(`select name from ${MIGRATION_TABLE}`).pluck().all() as string[];
  const unknown = applied.filter((name) => !(name in migrations));
  if (unknown.length > 0) {
    throw new DatabaseError(
      'DATABASE_SCHEMA_TOO_NEW',
      `${filename} was migrated by a newer promised (migration ${unknown[0]}); upgrade promised to open it`,
    );
  }
  return Object.keys(migrations).every((name) => applied.includes(name));
}

async function migrate(connection: BetterSqlite3.Database): Promise<void> {
  const db = new Kysely<Database>({ dialect: new ImmediateSqliteDialect({ database: connection }) });
  const provider: MigrationProvider = { getMigrations: async () => migrations };
  const migrator = new Migrator({ db, provider, migrationTableName: MIGRATION_TABLE, migrationLockTableName: MIGRATION_LOCK_TABLE });
  const { error } = await migrator.migrateToLatest();
  if (error) throw error;
  // Kysely's destroy() would close the shared connection; the store owns it from here.
}
