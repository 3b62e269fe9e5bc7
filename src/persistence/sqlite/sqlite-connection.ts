import type BetterSqlite3 from 'better-sqlite3';
import type { QueryResult, Queryable, StoreConnection } from '../connection.js';
import type { Statement } from '../statement.js';
import { startBackgroundCheckpoints, type BackgroundCheckpoints } from './background-checkpoints.js';
import { classifySqliteError } from './sqlite-errors.js';
import { sqliteSqlDialect } from './sqlite-sql-dialect.js';

/** How often the background thread checkpoints the WAL into the database file. */
const CHECKPOINT_INTERVAL_MS = 200;

/** How often, and how long, a transaction retries when another process holds the write lock past busy_timeout. */
const BUSY_RETRIES = 20;
const BUSY_BACKOFF_MS = 25;

const NO_ROWS: never[] = [];

/**
 * One better-sqlite3 connection: statements run synchronously as cached prepared statements,
 * inside `BEGIN IMMEDIATE` transactions serialised here (one connection, one transaction at a
 * time). Other processes' commits are seen in `PRAGMA data_version`, so no statement needs to
 * announce its own.
 */
export class SqliteConnection implements StoreConnection {
  readonly dialect = sqliteSqlDialect;
  readonly #db: BetterSqlite3.Database;
  readonly #prepared = new Map<Statement, BetterSqlite3.Statement>();
  readonly #changeListeners = new Set<() => void>();
  readonly #changeCheckIntervalMs: number;
  #changeTimer: NodeJS.Timeout | undefined;
  #dataVersion = 0;
  #queue: Promise<unknown> = Promise.resolve();
  #checkpoints: BackgroundCheckpoints | undefined;
  #closed = false;

  constructor(db: BetterSqlite3.Database, options: { changeCheckIntervalMs: number }) {
    this.#db = db;
    this.#changeCheckIntervalMs = options.changeCheckIntervalMs;
  }

  query<Args, Row>(statement: Statement<Args, Row>, args: Args): QueryResult<Row> {
    try {
      return this.#query(statement, args);
    } catch (error) {
      // Reads run outside a transaction too: a damaged file is a typed error there as well.
      throw classifySqliteError(error);
    }
  }

  #query<Args, Row>(statement: Statement<Args, Row>, args: Args): QueryResult<Row> {
    let prepared = this.#prepared.get(statement);
    if (!prepared) {
      prepared = this.#db.prepare(statement.sql);
      this.#prepared.set(statement, prepared);
    }
    const values = statement.bind(args);
    if (!prepared.reader) return { rows: NO_ROWS, affected: prepared.run(values).changes };
    const rows = prepared.all(values) as Row[];
    return { rows, affected: rows.length };
  }

  *stream<Args, Row>(statement: Statement<Args, Row>, args: Args): Iterable<Row> {
    try {
      // A statement object of its own: iterate() keeps it busy until the loop ends.
      yield* this.#db.prepare(statement.sql).iterate(statement.bind(args)) as Iterable<Row>;
    } catch (error) {
      throw classifySqliteError(error);
    }
  }

  transaction<T>(work: (tx: Queryable) => Promise<T>): Promise<T> {
    const run = this.#queue.then(() => this.#runTransaction(work));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #runTransaction<T>(work: (tx: Queryable) => Promise<T>): Promise<T> {
    await this.#begin().catch((error: unknown) => Promise.reject(classifySqliteError(error)));
    try {
      const result = await work(this);
      this.#db.exec('COMMIT');
      return result;
    } catch (error) {
      if (this.#db.inTransaction) this.#db.exec('ROLLBACK');
      throw classifySqliteError(error);
    }
  }

  // busy_timeout already waited inside SQLite; past it, yield to the event loop and try again
  // rather than surface SQLITE_BUSY as a lost write.
  async #begin(): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        this.#db.exec('BEGIN IMMEDIATE');
        return;
      } catch (error) {
        const code = (error as { code?: string }).code;
        if (code !== 'SQLITE_BUSY' || attempt >= BUSY_RETRIES) throw error;
        await new Promise((resolve) => setTimeout(resolve, BUSY_BACKOFF_MS * (1 + Math.random())));
      }
    }
  }

  async execute(sql: string): Promise<unknown[]> {
    const statement = this.#db.prepare(sql);
    if (statement.reader) return statement.all();
    statement.run();
    return [];
  }

  async startMaintenance(): Promise<void> {
    if (this.#checkpoints || this.#db.memory || this.#closed) return;
    try {
      this.#checkpoints = await startBackgroundCheckpoints(this.#db.name, CHECKPOINT_INTERVAL_MS);
      this.#db.pragma('wal_autocheckpoint = 0');
    } catch {
      // No worker thread: SQLite's own automatic checkpoint stays on, which is correct, only slower at p99.
      this.#checkpoints = undefined;
    }
  }

  onExternalChange(listener: () => void): () => void {
    this.#changeListeners.add(listener);
    if (!this.#changeTimer && this.#changeCheckIntervalMs > 0) {
      this.#dataVersion = this.#readDataVersion();
      // PRAGMA data_version changes only when *another* connection commits; reading it is a
      // few microseconds and touches no table, so this timer costs nothing while idle.
      this.#changeTimer = setInterval(() => this.#checkForExternalChange(), this.#changeCheckIntervalMs);
      this.#changeTimer.unref();
    }
    return () => {
      this.#changeListeners.delete(listener);
      if (this.#changeListeners.size === 0 && this.#changeTimer) {
        clearInterval(this.#changeTimer);
        this.#changeTimer = undefined;
      }
    };
  }

  #readDataVersion(): number {
    return this.#db.pragma('data_version', { simple: true }) as number;
  }

  #checkForExternalChange(): void {
    if (this.#closed) return;
    const version = this.#readDataVersion();
    if (version === this.#dataVersion) return;
    this.#dataVersion = version;
    for (const listener of this.#changeListeners) listener();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    await this.#queue;
    this.#closed = true;
    await this.#checkpoints?.stop();
    if (this.#changeTimer) clearInterval(this.#changeTimer);
    this.#changeListeners.clear();
    this.#db.close();
  }
}
