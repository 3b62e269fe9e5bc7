import fs from 'node:fs';
import path from 'node:path';
import { isPostgresUrl } from '../persistence/open-store.js';

// What the command line needs to know about `--db`, for both kinds of database. Whether `--db`
// names PostgreSQL is decided by the store's own `isPostgresUrl`, the one check the engine uses.

export { isPostgresUrl };

/**
 * `--db` as it may be shown to people and written to PID files and logs: an SQLite path as given,
 * a PostgreSQL URL without its password (in the user part or as a `password` parameter).
 */
export function displayDatabase(database: string): string {
  if (!isPostgresUrl(database)) return database;
  try {
    const url = new URL(database);
    url.password = '';
    for (const name of [...url.searchParams.keys()]) if (/pass/i.test(name)) url.searchParams.delete(name);
    return url.toString();
  } catch {
    return 'postgres://…';
  }
}

/**
 * The database as PID files record it and `worker status --json` reports it: an SQLite file's
 * absolute path (the same file whatever the current directory), or the URL without its password.
 */
export function databaseIdentity(database: string): string {
  return isPostgresUrl(database) ? displayDatabase(database) : path.resolve(database);
}

/**
 * Where a worker's PID and log files go by default, without their `.worker.pid` / `.worker.log`
 * ending: beside an SQLite file (`/srv/app/promised.db`), or for PostgreSQL in the current
 * directory, named after the server and database (`./promised-db.example.com-5432-app`): there is
 * no file to put them beside, and the directory a worker is started from is where people look.
 */
export function workerFileBase(database: string): string {
  if (!isPostgresUrl(database)) return path.resolve(database);
  let host = 'localhost';
  let port = '5432';
  let name = 'postgres';
  try {
    const url = new URL(database);
    host = url.hostname || url.searchParams.get('host') || host;
    port = url.port || port;
    name = decodeURIComponent(url.pathname.slice(1)) || decodeURIComponent(url.username) || name;
  } catch {
    // An unparseable URL fails when it is opened; its files still need a name.
  }
  const slug = `${host}-${port}-${name}`.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^[._]+/, '');
  return path.resolve(`promised-${slug}`);
}

/**
 * What `--db` holds, read without creating anything: `present` for an SQLite file that exists or
 * a PostgreSQL database with tables in its schema (a promised database, or someone else's, which
 * opening then refuses with DATABASE_NOT_PROMISED before writing anything); `empty` for a
 * PostgreSQL database with no tables; `missing` for a file that does not exist or a database the
 * server does not have. A server that cannot be reached throws DATABASE_UNAVAILABLE.
 */
export async function probeDatabase(database: string): Promise<'present' | 'empty' | 'missing'> {
  if (database === ':memory:') return 'present';
  if (!isPostgresUrl(database)) return fs.existsSync(database) ? 'present' : 'missing';
  const [{ default: pg }, { toOpenError }] = await Promise.all([import('pg'), import('../persistence/postgres/postgres-errors.js')]);
  const client = new pg.Client({ connectionString: database, connectionTimeoutMillis: 10_000 });
  // A connection that breaks after connecting reports through 'error'; the query rejects anyway.
  client.on('error', () => {});
  try {
    await client.connect();
    const { rows } = await client.query<{ n: string }>(`select count(*) as n from information_schema.tables where table_schema = current_schema()`);
    return Number(rows[0]?.n ?? 0) > 0 ? 'present' : 'empty';
  } catch (error) {
    // invalid_catalog_name: the server has no database of that name.
    if ((error as { code?: unknown }).code === '3D000') return 'missing';
    throw toOpenError(error, displayDatabase(database));
  } finally {
    await client.end().catch(() => {});
  }
}
