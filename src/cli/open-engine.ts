import fs from 'node:fs';
import type { Logger } from 'pino';
import type { Engine, EngineOptions } from '../index.js';
import { CliError } from './exit-codes.js';

/** Options every command takes. */
export interface GlobalOptions {
  db: string;
  json?: boolean;
}

/**
 * Opens the engine on `--db` for one command. Commands that only read or change existing
 * promises pass `mustExist`, so a mistyped `--db` is reported instead of creating an empty file.
 * The engine is imported here, lazily, so commands that do not need it do not pay for loading it.
 */
export async function openEngine(database: string, options: Omit<EngineOptions, 'database'> & { mustExist?: boolean } = {}): Promise<Engine> {
  const { mustExist, ...engineOptions } = options;
  if (mustExist && database !== ':memory:' && !fs.existsSync(database)) {
    throw new CliError('DATABASE_NOT_FOUND', `no database at ${database}; pass --db PATH or set PROMISED_DB (enqueue or worker start creates one)`);
  }
  const [{ createEngine }, logger] = await Promise.all([import('../engine/create-engine.js'), engineOptions.logger ?? quietLogger()]);
  return createEngine({ ...engineOptions, database, logger });
}

/**
 * The logger of short-lived commands: errors only, on stderr, so a command's own one-line
 * messages are what people read (PROMISED_LOG_LEVEL raises it).
 */
export async function quietLogger(): Promise<Logger> {
  const { default: pino } = await import('pino');
  return pino({ name: 'promised', level: process.env.PROMISED_LOG_LEVEL ?? 'error' }, pino.destination(2));
}
