import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import type { QueryResult, Queryable, StoreConnection } from '../connection.js';
import type { Statement } from '../statement.js';
import { CHANGE_CHANNEL, ChangeListener } from './change-listener.js';
import { backoffMs, commitReportingXid, sleep, transactionStatus } from './commit-outcome.js';
import { PgStatement } from './pg-statement.js';
import { isConflict, isConnectionLoss } from './postgres-errors.js';
import { postgresSqlDialect } from './postgres-sql-dialect.js';

/** How often a transaction that lost to another one (deadlock, serialization) runs again. */
const CONFLICT_RETRIES = 10;

/** Rows changed since the last ANALYZE above which a starting engine refreshes the statistics itself. */
const ANALYZE_AFTER_CHANGES = 1_000;

export interface PostgresConnectionSettings {
  /** How long a transaction keeps retrying while the server cannot be reached, ms. */
  reconnectTimeoutMs: number;
  /** The client config of the listening connection (the pool's, without pool settings). */
  listenerConfig: pg.ClientConfig;
  /** Change reports after the first of a burst come at most this often, ms (0: every event-loop turn). */
  changeIntervalMs: number;
}

/** How one attempt of a transaction ended. */
type Attempt<T> = { committed: true; value: T } | { committed: false; error: unknown; rerun: 'conflict' | 'not committed' | 'never' };

/**
 * A pool of pg connections: statements run as named prepared statements; transactions under
 * READ COMMITTED run again whole when they lose a deadlock or when the connection drops before
 * the commit; a transaction in which a statement declared waking changed rows sends a `NOTIFY`
 * with its commit, and a dedicated connection `LISTEN`s for other processes' ones.
 */
export class PostgresConnection implements StoreConnection {
  readonly dialect = postgresSqlDialect;
  readonly #pool: pg.Pool;
  readonly #settings: PostgresConnectionSettings;
  readonly #prepared = new Map<Statement, PgStatement<any>>();
  /** Carried by our notifications, so our own listener can ignore them. */
  readonly #selfId = randomUUID().replace(/-/g, '');
  readonly #changeListeners = new Set<() => void>();
  #listener: ChangeListener | undefined;
  readonly #active = new Set<Promise<unknown>>();
  #closed = false;

  constructor(pool: pg.Pool, settings: PostgresConnectionSettings) {
    this.#pool = pool;
    this.#settings = settings;
  }

  /** Runs a statement outside any transaction (reads), on whichever pooled connection is free. */
  query<Args, Row>(statement: Statement<Args, Row>, args: Args): Promise<QueryResult<Row>> {
    return this.#run(this.#pool, statement, args);
  }

  async #run<Args, Row>(on: pg.Pool | pg.PoolClient, statement: Statement<Args, Row>, args: Args): Promise<QueryResult<Row>> {
    let prepared = this.#prepared.get(statement);
    if (!prepared) {
      prepared = new PgStatement(statement);
      this.#prepared.set(statement, prepared);
    }
    const result = await on.query(prepared.config(args));
    return { rows: result.rows as Row[], affected: result.rowCount ?? 0 };
  }

  async *stream<Args, Row>(statement: Statement<Args, Row>, args: Args): AsyncIterable<Row> {
    // Read whole: resuming reads every unfinished row once, at start.
    yield* (await this.query(statement, args)).rows;
  }

  transaction<T>(work: (tx: Queryable) => Promise<T>): Promise<T> {
    const running = this.#runTransaction(work);
    this.#active.add(running);
    void running.finally(() => this.#active.delete(running)).catch(() => {});
    return running;
  }

  async #runTransaction<T>(work: (tx: Queryable) => Promise<T>): Promise<T> {
    const deadline = Date.now() + this.#settings.reconnectTimeoutMs;
    for (let attempt = 0; ; attempt++) {
      const outcome = await this.#attempt(work, deadline);
      if (outcome.committed) return outcome.value;
      // A commit whose answer was lost, with no transaction id to ask about, may have happened:
      // running the work again could apply it twice (an enqueue would insert twice), so that
      // one error goes to the caller.
      const rerun =
        !this.#closed && (outcome.rerun === 'conflict' ? attempt < CONFLICT_RETRIES : outcome.rerun === 'not committed' && Date.now() < deadline);
      if (!rerun) throw outcome.error;
      await sleep(backoffMs(attempt));
    }
  }

  async #attempt<T>(work: (tx: Queryable) => Promise<T>, deadline: number): Promise<Attempt<T>> {
    let client: pg.PoolClient | undefined;
    let committing = false;
    let result: T | undefined;
    /** The transaction id the server reported before COMMIT: null when it wrote nothing, undefined when not heard. */
    let xid: string | null | undefined;
    // The pool listens for errors on idle connections only. A checked-out connection that the
    // server ends between two statements (a restart: 57P01 arrives while no query is active)
    // emits 'error' with nobody listening, which would end the process; the next statement
    // fails with that error instead, and the transaction runs again on a new connection.
    const onClientError = () => {};
    const release = (connection: pg.PoolClient, destroy?: Error | boolean) => {
      connection.removeListener('error', onClientError);
      connection.release(destroy);
    };
    try {
      client = await this.#pool.connect();
      client.on('error', onClientError);
      await client.query('begin');
      const tx = this.#transactionOn(client);
      result = await work(tx);
      committing = true;
      // One round trip: the transaction's id (null if it wrote nothing), then the notification,
      // queued inside the transaction and delivered to every listening process only if and
      // when the commit succeeds, then the commit.
      const notify = tx.wakes ? `select pg_notify('${CHANGE_CHANNEL}', '${this.#selfId}'); ` : '';
      xid = await commitReportingXid(client, `select txid_current_if_assigned()::text as xid; ${notify}commit`, (id) => (xid = id));
      release(client);
      return { committed: true, value: result };
    } catch (error) {
      const lost = isConnectionLoss(error);
      if (lost && committing && xid !== undefined && client) {
        // The connection failed during COMMIT, but the server told us the transaction's id
        // first (a restart's "terminating connection" error arrives after the output before
        // it): ask a new connection whether it committed, instead of guessing.
        release(client, true);
        const outcome = xid === null ? 'aborted' : await transactionStatus(this.#pool, xid, deadline, () => this.#closed);
        if (outcome === 'committed') return { committed: true, value: result! };
        // Never committed (or wrote nothing): running the work again is safe.
        return { committed: false, error, rerun: outcome === 'aborted' ? 'not committed' : 'never' };
      }
      if (client) {
        if (lost) release(client, true);
        else {
          await client.query('rollback').then(
            () => release(client!),
            (rollbackError: unknown) => release(client!, rollbackError as Error),
          );
        }
      }
      return { committed: false, error, rerun: isConflict(error) ? 'conflict' : lost && !committing ? 'not committed' : 'never' };
    }
  }

  /** One attempt's statements on `client`; `wakes` once a statement declared waking changed a row. */
  #transactionOn(client: pg.PoolClient): Queryable & { readonly wakes: boolean } {
    let wakes = false;
    return {
      query: async (statement, args) => {
        const result = await this.#run(client, statement, args);
        if (statement.traits.wakes && result.affected > 0) wakes = true;
        return result;
      },
      get wakes() {
        return wakes;
      },
    };
  }

  async execute(sql: string): Promise<unknown[]> {
    return (await this.#pool.query(sql)).rows;
  }

  /**
   * PostgreSQL checkpoints and vacuums on its own; a starting worker only refreshes the planner's
   * statistics of `promises` when many rows changed since the last ANALYZE. Why: autovacuum
   * analyzes a table up to a minute after a bulk load, and until then the claim's filter on
   * `type` looks so selective that PostgreSQL fetches every pending row and sorts them instead of
   * walking the ready index and stopping after a few: measured 9–13 ms against 0.17 ms per claim
   * over 10,000 pending promises. Not on a table that barely changed: statistics taken of an
   * empty table are worse than none (claims at 500/s waited 31 ms at p50 instead of 4 ms).
   */
  async startMaintenance(): Promise<void> {
    const { rows } = await this.#pool.query<{ changed: string }>(
      `select n_mod_since_analyze::text as changed from pg_stat_user_tables where relname = 'promises' and schemaname = current_schema()`,
    );
    if (Number(rows[0]?.changed ?? 0) >= ANALYZE_AFTER_CHANGES) await this.#pool.query('analyze promises');
  }

  onExternalChange(listener: () => void): () => void {
    this.#changeListeners.add(listener);
    if (!this.#listener && !this.#closed) {
      const notifyAll = () => {
        for (const callback of [...this.#changeListeners]) callback();
      };
      this.#listener = new ChangeListener(this.#settings.listenerConfig, this.#selfId, notifyAll, this.#settings.changeIntervalMs);
      this.#listener.start();
    }
    return () => {
      this.#changeListeners.delete(listener);
      if (this.#changeListeners.size === 0 && this.#listener) {
        void this.#listener.stop();
        this.#listener = undefined;
      }
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#changeListeners.clear();
    await this.#listener?.stop();
    this.#listener = undefined;
    await Promise.allSettled([...this.#active]);
    await this.#pool.end();
  }
}
