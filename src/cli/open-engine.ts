import type { Engine, EngineOptions } from '../index.js';
import { displayDatabase, isPostgresUrl, probeDatabase } from './database.js';
import { CliError } from './exit-codes.js';
import { quietLogger } from './quiet-logger.js';

/** Options every command takes. */
export interface GlobalOptions {
  db: string;
  json?: boolean;
}

/**
 * Opens the engine on `--db` for one command. Commands that only read or change existing
 * promises pass `mustExist`, so a mistyped `--db` is reported instead of creating an empty file
 * (SQLite) or creating the tables in an empty database (PostgreSQL).
 * The engine is imported here, lazily, so commands that do not need it do not pay for loading it.
 */
export async function openEngine(database: string, options: Omit<EngineOptions, 'database'> & { mustExist?: boolean } = {}): Promise<Engine> {
  const { mustExist, ...engineOptions } = options;
  if (mustExist) {
    const state = await probeDatabase(database);
    if (state !== 'present') throw databaseNotFound(database, state);
  }
  const { createEngine } = await import('../create-engine.js');
  return createEngine({ ...engineOptions, database, logger: engineOptions.logger ?? quietLogger() });
}

function databaseNotFound(database: string, state: 'empty' | 'missing'): CliError {
  if (!isPostgresUrl(database)) {
    return new CliError('DATABASE_NOT_FOUND', `no database at ${database}; pass --db PATH or set PROMISED_DB (enqueue or worker start creates one)`);
  }
  const where = displayDatabase(database);
  return new CliError(
    'DATABASE_NOT_FOUND',
    state === 'missing'
      ? `no PostgreSQL database at ${where}: the server has no database of that name; check --db or PROMISED_DB (create it with createdb, then enqueue or worker start creates the tables)`
      : `no promised database at ${where}: the database holds no tables; check --db or PROMISED_DB (enqueue or worker start creates the tables)`,
  );
}
