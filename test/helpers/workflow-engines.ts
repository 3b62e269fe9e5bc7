import BetterSqlite3 from 'better-sqlite3';
import pg from 'pg';
import { afterEach, expect } from 'vitest';
import { createEngine, PromisedError, type Engine, type EngineOptions } from '../../src/index.js';

// What the workflow steering tests share: engines closed after each test, rows read straight
// from the database (what is on disk, not what the engine says), and typed-error checks.

const engines: Engine[] = [];
afterEach(async () => {
  for (const engine of engines.splice(0)) await engine.stop();
});

/** An engine on `database`, stopped after the test. */
export async function openEngine(database: string, options: EngineOptions = {}): Promise<Engine> {
  const engine = await createEngine({ database, changeCheckIntervalMs: 10, cleanupIntervalMs: 0, ...options });
  engines.push(engine);
  return engine;
}

/** Stops an engine before the test ends (a restart). */
export async function stopEngine(engine: Engine): Promise<void> {
  engines.splice(engines.indexOf(engine), 1);
  await engine.stop();
}

const isPostgres = (database: string) => /^postgres(ql)?:\/\//.test(database);

/** Rows read straight from the database; `$1`-style parameters on both backends. */
export async function readRows<T>(database: string, query: string, params: unknown[] = []): Promise<T[]> {
  if (!isPostgres(database)) {
    const db = new BetterSqlite3(database, { readonly: true, fileMustExist: true });
    try {
      return db.prepare(query.replace(/\$\d+/g, '?')).all(...params) as T[];
    } finally {
      db.close();
    }
  }
  const client = new pg.Client({ connectionString: database });
  await client.connect();
  try {
    return (await client.query(query, params)).rows as T[];
  } finally {
    await client.end();
  }
}

/** How many rows `table` holds. */
export async function countRows(database: string, table: string): Promise<number> {
  const [row] = await readRows<{ n: number | string }>(database, `select count(*) as n from ${table}`);
  return Number(row!.n);
}

/** Expects `call` to reject (or throw) a `PromisedError` with `code`. */
export async function expectCode(code: string, call: () => unknown): Promise<PromisedError> {
  const error = await Promise.resolve()
    .then(call)
    .then(
      () => undefined,
      (thrown: unknown) => thrown,
    );
  expect(error, `expected ${code}`).toBeInstanceOf(PromisedError);
  expect((error as PromisedError).code).toBe(code);
  return error as PromisedError;
}
