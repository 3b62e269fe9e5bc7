import { andThen } from './awaitable.js';
import type { SqlDialect } from './sql-dialect.js';
import type { Statement } from './statement.js';
import type { Awaitable } from './store.js';

/** What running one statement gives: its rows (if it returns any) and how many rows it changed or read. */
export interface QueryResult<Row> {
  readonly rows: Row[];
  readonly affected: number;
}

/** Something that runs compiled statements: a connection, or one transaction on it. */
export interface Queryable {
  query<Args, Row>(statement: Statement<Args, Row>, args: Args): Awaitable<QueryResult<Row>>;
}

/**
 * One database, as the store sees it: the whole per-dialect surface below the store, in the
 * spirit of Kysely's `DatabaseConnection` (run a compiled statement, open a transaction), plus
 * what a dialect does on its own (its cross-process change signal, its maintenance).
 */
export interface StoreConnection extends Queryable {
  readonly dialect: SqlDialect;
  /** Runs `work` in one write transaction (serialised, or retried when it lost to another). */
  transaction<T>(work: (tx: Queryable) => Promise<T>): Promise<T>;
  /** The rows of one statement, read as the dialect streams best. */
  stream<Args, Row>(statement: Statement<Args, Row>, args: Args): Iterable<Row> | AsyncIterable<Row>;
  /** Runs raw SQL (for tests and tools that inspect the database). */
  execute(sql: string): Promise<unknown[]>;
  onExternalChange(listener: () => void): () => void;
  startMaintenance(): Promise<void>;
  close(): Promise<void>;
}

/** The rows `statement` returns. */
export function all<Args, Row>(on: Queryable, statement: Statement<Args, Row>, args: Args): Awaitable<Row[]> {
  return andThen(on.query(statement, args), (result) => result.rows);
}

/** The first row `statement` returns, if any. */
export function first<Args, Row>(on: Queryable, statement: Statement<Args, Row>, args: Args): Awaitable<Row | undefined> {
  return andThen(on.query(statement, args), (result) => result.rows[0]);
}

/** How many rows `statement` changed. */
export function run<Args>(on: Queryable, statement: Statement<Args, unknown>, args: Args): Awaitable<number> {
  return andThen(on.query(statement, args), (result) => result.affected);
}
