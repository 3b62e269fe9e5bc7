import { randomUUID } from 'node:crypto';
import { Kysely, sql, type Compilable } from 'kysely';
import pg from 'pg';
import type { PreparedQuery } from '../prepared.js';
import { buildLifecycleQueries, type LifecycleQueries } from '../lifecycle-queries.js';
import { buildQueries, type Queries, type QueryCapabilities } from '../queries.js';
import { buildWorkflowQueries, type WorkflowQueries } from '../workflow-queries.js';
import type { Database, PromiseRow, WorkflowRow } from '../schema.js';
import type { ClaimedRow, DeadLetterRow, ExpiredLease, HistoryRow, PromiseFilter, RowRef, ScheduleRow, Store, StoreTransaction } from '../store.js';
import { CHANGE_CHANNEL, ChangeListener } from './change-listener.js';
import { buildLockingQueries, type LockingQueries } from './locking-queries.js';
import { PgStatement } from './pg-statement.js';
import { isConflict, isConnectionLoss } from './postgres-errors.js';
import { PromisedPostgresDialect } from './postgres-dialect.js';

/** How often a transaction that lost to another one (deadlock, serialization) runs again. */
const CONFLICT_RETRIES = 10;
const BACKOFF_MIN_MS = 5;
const BACKOFF_MAX_MS = 1_000;

export interface PostgresStoreSettings {
  /** How long a transaction keeps retrying while the server cannot be reached, ms. */
  reconnectTimeoutMs: number;
  /** The client config of the listening connection (the pool's, without pool settings). */
  listenerConfig: pg.ClientConfig;
  /** Change reports after the first of a burst come at most this often, ms (0: every event-loop turn). */
  changeIntervalMs: number;
}

/** Rows changed since the last ANALYZE above which a starting engine refreshes the statistics itself. */
const ANALYZE_AFTER_CHANGES = 1_000;

/**
 * The PostgreSQL store: the same Kysely-built statements as SQLite, run as named prepared
 * statements on pooled connections; transactions under READ COMMITTED, with the few reads that
 * need it taking row locks (`locking-queries.ts`), retried whole when they lose a deadlock or
 * when the connection drops before the commit; `NOTIFY` inside every transaction that changed
 * what other processes wait for.
 */
export class PostgresStore implements Store {
  readonly #pool: pg.Pool;
  readonly #builder: Kysely<Database>;
  readonly #statements = new Map<PreparedQuery<any>, PgStatement<any>>();
  readonly #q: Queries;
  readonly #life: LifecycleQueries;
  readonly #wf: WorkflowQueries;
  readonly #lock: LockingQueries;
  readonly #settings: PostgresStoreSettings;
  /** Carried by our notifications, so our own listener can ignore them. */
  readonly #selfId = randomUUID().replace(/-/g, '');
  readonly #changeListeners = new Set<() => void>();
  #listener: ChangeListener | undefined;
  #active = new Set<Promise<unknown>>();
  #closed = false;

  constructor(pool: pg.Pool, settings: PostgresStoreSettings) {
    this.#pool = pool;
    this.#settings = settings;
    this.#builder = new Kysely<Database>({ dialect: new PromisedPostgresDialect({ pool }) });
    const capabilities: QueryCapabilities = {
      skipLocked: true,
      inBoundList: (column, list) => sql<boolean>`${sql.ref(column)} = any(${list})`,
    };
    this.#q = buildQueries(this.#builder, capabilities);
    this.#life = buildLifecycleQueries(this.#builder, capabilities);
    this.#wf = buildWorkflowQueries(this.#builder);
    this.#lock = buildLockingQueries(this.#builder);
  }

  #statement(query: PreparedQuery<any>): PgStatement<any> {
    let statement = this.#statements.get(query);
    if (!statement) {
      statement = new PgStatement(query);
      this.#statements.set(query, statement);
    }
    return statement;
  }

  /** Runs a statement outside any transaction (reads), on whichever pooled connection is free. */
  async #read<Row>(query: PreparedQuery<any>, args: object): Promise<Row[]> {
    const result = await this.#pool.query(this.#statement(query).config(args));
    return result.rows as Row[];
  }

  async #first<Row>(query: PreparedQuery<any>, args: object): Promise<Row | undefined> {
    return (await this.#read<Row>(query, args))[0];
  }

  #createTransactionApi(client: pg.PoolClient): { api: StoreTransaction; changed: () => boolean } {
    let changed = false;
    const all = async <Row>(query: PreparedQuery<any>, args: object): Promise<Row[]> => {
      const result = await client.query(this.#statement(query).config(args));
      return result.rows as Row[];
    };
    const first = async <Row>(query: PreparedQuery<any>, args: object) => (await all<Row>(query, args))[0];
    const run = async (query: PreparedQuery<any>, args: object): Promise<number> => (await client.query(this.#statement(query).config(args))).rowCount ?? 0;
    const write = async (query: PreparedQuery<any>, args: object): Promise<number> => {
      const count = await run(query, args);
      if (count > 0) changed = true;
      return count;
    };
    const writeRows = async <Row>(query: PreparedQuery<any>, args: object): Promise<Row[]> => {
      const rows = await all<Row>(query, args);
      if (rows.length > 0) changed = true;
      return rows;
    };
    const q = this.#q;
    const life = this.#life;
    const wf = this.#wf;
    const lock = this.#lock;
    const api: StoreTransaction = {
      insertPromise: async (row) => {
        changed = true;
        return (await first<{ id: number }>(q.insertPromise, row))!.id;
      },
      insertDependency: async (parentId, childId) => {
        await run(q.insertDependency, { parentId, childId });
      },
      idByKey: async (key) => (await first<{ id: number }>(q.idByKey, { key }))?.id,
      statusOf: async (id) => (await first<{ status: string }>(lock.statusOfShared, { id }))?.status,
      stateOf: (id) => first(lock.stateOfForUpdate, { id }),
      getPromiseRunAt: async (id) => (await first<{ run_at: number }>(q.runAtOf, { id }))?.run_at,
      // RETURNING does not keep the subquery's order; the claim order is part of the contract.
      claimDue: async (request) => (await all<ClaimedRow>(q.claimDue, request)).sort(byClaimOrder),
      updateState: async (update) => (await write(q.updateState, update)) === 1,
      releaseReadyChildren: async (update) => {
        await run(lock.lockWaitingChildren, { parentId: update.parentId });
        return writeRows<RowRef>(q.releaseReadyChildren, update);
      },
      // Repeated until it finds nothing: a statement that waited on a row an enqueue had locked
      // read the edges before that enqueue committed; the next one, with a fresh snapshot, sees
      // the edges it added (READ COMMITTED takes a snapshot per statement).
      failWaitingDescendants: async (update) => {
        const failed: RowRef[] = [];
        for (;;) {
          const rows = await writeRows<RowRef>(q.failWaitingDescendants, update);
          if (rows.length === 0) return failed;
          failed.push(...rows);
        }
      },
      reviveFailedDescendants: (update) => writeRows(q.reviveFailedDescendants, update),
      parentStatesOf: (id) => all(lock.parentStatesOfShared, { id }),
      releaseAllReadyWaiting: (update) => writeRows(q.releaseAllReadyWaiting, update),
      waitingWithFailedParent: () => all(q.waitingWithFailedParent, {}),
      expiredLeases: (now, limit) => all<ExpiredLease>(q.expiredLeases, { now, limit }),
      leasesOwnedBy: (owner) => all<ExpiredLease>(q.leasesOwnedBy, { owner }),
      renewLeases: (owner, leaseExpiresAt, now) => all(q.renewLeases, { owner, leaseExpiresAt, now }),
      saveProgress: async (id, leaseToken, current, total, now) => (await run(q.saveProgress, { id, leaseToken, current, total, now })) === 1,
      repairSnapshot: async (id, status, snapshot) => {
        await run(q.repairSnapshot, { id, status, snapshot });
      },
      insertHistory: async (entry) => {
        await run(life.insertHistory, entry);
      },
      insertDeadLetter: async (id, errorCode, errorMessage, failedAt) => {
        await run(life.insertDeadLetter, { id, errorCode, errorMessage, failedAt });
      },
      deleteDeadLettersOf: async (id) => {
        await run(life.deleteDeadLettersOf, { id });
      },
      clearDeadLetters: () => run(life.clearDeadLetters, {}),
      deleteExpired: (now, limit) => run(life.deleteExpired, { now, limit }),
      deleteFinishedBefore: (cutoff, limit) => run(life.deleteFinishedBefore, { cutoff, limit }),
      upsertSchedule: async (name, cron, timezone, now) => {
        await run(life.upsertSchedule, { name, cron, timezone, now });
      },
      getSchedule: (name) => first<ScheduleRow>(life.getSchedule, { name }),
      advanceSchedule: async (name, dueAt, now) => (await run(life.advanceSchedule, { name, dueAt, now })) === 1,
      stalePending: (types, cutoff) => all<ExpiredLease>(life.stalePending, { types, cutoff }),
      insertWorkflow: async (row) => {
        changed = true;
        return (await first<{ id: number }>(wf.insertWorkflow, row))!.id;
      },
      getWorkflow: (id) => first(lock.getWorkflowForUpdate, { id }),
      saveWorkflow: async (update) => {
        await write(wf.saveWorkflow, update);
      },
      insertWorkflowEvent: async (workflowId, event, now) => {
        changed = true;
        return (await first<{ id: number }>(wf.insertEvent, { workflowId, event, now }))!.id;
      },
      markWorkflowEventApplied: async (id, now) => {
        await run(wf.markEventApplied, { id, now });
      },
      unappliedWorkflowEvents: (workflowId) => all(wf.unappliedEvents, { workflowId }),
      upsertWorkflowTimer: async (timer) => {
        await write(wf.upsertTimer, timer);
      },
      deleteWorkflowTimer: async (workflowId, timerId) => (await write(wf.deleteTimer, { workflowId, timerId })) === 1,
      latestStepOf: async (workflowId, invokeId) => (await first<{ id: number }>(wf.latestStepOf, { workflowId, invokeId }))?.id,
      workflowOfParentStep: async (stepId) => (await first<{ id: number }>(wf.workflowOfParentStep, { stepId }))?.id,
      deleteWorkflowTimers: async (workflowId) => {
        await run(wf.deleteTimersOf, { workflowId });
      },
      dueWorkflowTimers: (now, limit) => all(wf.dueTimers, { now, limit }),
      stepsOf: (workflowId) => all(wf.stepsOf, { workflowId }),
    };
    return { api, changed: () => changed };
  }

  transaction<T>(work: (tx: StoreTransaction) => Promise<T>): Promise<T> {
    const running = this.#runTransaction(work);
    this.#active.add(running);
    void running.finally(() => this.#active.delete(running)).catch(() => {});
    return running;
  }

  async #runTransaction<T>(work: (tx: StoreTransaction) => Promise<T>): Promise<T> {
    const deadline = Date.now() + this.#settings.reconnectTimeoutMs;
    for (let attempt = 0; ; attempt++) {
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
        const { api, changed } = this.#createTransactionApi(client);
        result = await work(api);
        committing = true;
        // One round trip: the transaction's id (null if it wrote nothing), then the notification,
        // queued inside the transaction and delivered to every listening process only if and
        // when the commit succeeds, then the commit.
        const notify = changed() ? `select pg_notify('${CHANGE_CHANNEL}', '${this.#selfId}'); ` : '';
        xid = await commitReportingXid(client, `select txid_current_if_assigned()::text as xid; ${notify}commit`, (id) => (xid = id));
        release(client);
        return result;
      } catch (error) {
        const lost = isConnectionLoss(error);
        if (lost && committing && xid !== undefined && client) {
          // The connection failed during COMMIT, but the server told us the transaction's id
          // first (a restart's "terminating connection" error arrives after the output before
          // it): ask a new connection whether it committed, instead of guessing.
          release(client, true);
          client = undefined;
          const outcome = xid === null ? 'aborted' : await this.#transactionStatus(xid, deadline);
          if (outcome === 'committed') return result!;
          // Never committed (or wrote nothing): running the work again is safe.
          if (outcome === 'aborted' && !this.#closed && Date.now() < deadline) {
            await sleep(Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** attempt) * (0.5 + Math.random()));
            continue;
          }
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
        // A commit whose answer was lost, with no transaction id to ask about, may have
        // happened: running the work again could apply it twice (an enqueue would insert twice),
        // so that one error goes to the caller.
        const retry =
          !this.#closed &&
          ((isConflict(error) && attempt < CONFLICT_RETRIES) || (lost && !committing && Date.now() < deadline));
        if (!retry) throw error;
        await sleep(Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** attempt) * (0.5 + Math.random()));
      }
    }
  }

  /**
   * Whether transaction `xid` committed, asked on a new connection (`txid_status`) until the
   * server answers or `deadline` passes: 'committed', 'aborted' (which includes a transaction the
   * server was running when it went down), or 'unknown'.
   */
  async #transactionStatus(xid: string, deadline: number): Promise<'committed' | 'aborted' | 'unknown'> {
    for (let attempt = 0; !this.#closed; attempt++) {
      try {
        const { rows } = await this.#pool.query<{ status: string | null }>('select txid_status($1::bigint) as status', [xid]);
        const status = rows[0]?.status;
        if (status === 'committed' || status === 'aborted') return status;
        // 'in progress': the old session has not ended yet (the server has not noticed the cut).
        if (status !== 'in progress') return 'unknown';
      } catch (error) {
        if (!isConnectionLoss(error)) return 'unknown';
      }
      if (Date.now() >= deadline) return 'unknown';
      await sleep(Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** attempt) * (0.5 + Math.random()));
    }
    return 'unknown';
  }

  async getPromise(id: number): Promise<PromiseRow | undefined> {
    return this.#first(this.#q.getPromise, { id });
  }

  async dependenciesOf(id: number): Promise<number[]> {
    return (await this.#read<{ parent_id: number }>(this.#q.dependenciesOf, { id })).map((row) => row.parent_id);
  }

  listPromises(filter: PromiseFilter): Promise<PromiseRow[]> {
    let query = this.#builder.selectFrom('promises').selectAll().orderBy('id', 'desc').limit(filter.limit);
    if (filter.status !== undefined) query = query.where('status', '=', filter.status);
    if (filter.type !== undefined) query = query.where('type', '=', filter.type);
    return this.#execute(query);
  }

  listWorkflows(filter: { status?: string; name?: string; limit: number }): Promise<WorkflowRow[]> {
    let query = this.#builder.selectFrom('workflows').selectAll().orderBy('id', 'desc').limit(filter.limit);
    if (filter.status !== undefined) query = query.where('status', '=', filter.status);
    if (filter.name !== undefined) query = query.where('name', '=', filter.name);
    return this.#execute(query);
  }

  async #execute<Row>(query: Compilable<Row>): Promise<Row[]> {
    const compiled = query.compile();
    return (await this.#pool.query(compiled.sql, compiled.parameters as unknown[])).rows as Row[];
  }

  async nextRunAt(types: readonly string[]): Promise<number | null> {
    return (await this.#first<{ at: number | null }>(this.#q.nextRunAt, { types }))?.at ?? null;
  }

  async nextLeaseExpiry(): Promise<number | null> {
    return (await this.#first<{ at: number | null }>(this.#q.nextLeaseExpiry, {}))?.at ?? null;
  }

  async *unfinished(): AsyncIterable<{ id: number; status: string; snapshot: string; lease_owner: string | null }> {
    // Read whole: resuming reads every unfinished row once, at start.
    yield* await this.#read<{ id: number; status: string; snapshot: string; lease_owner: string | null }>(this.#q.unfinished, {});
  }

  historyOf(id: number): Promise<HistoryRow[]> {
    return this.#read(this.#life.historyOf, { id });
  }

  getWorkflow(id: number): Promise<WorkflowRow | undefined> {
    return this.#first(this.#wf.getWorkflow, { id });
  }

  stepsOf(workflowId: number): Promise<PromiseRow[]> {
    return this.#read(this.#wf.stepsOf, { workflowId });
  }

  runningWorkflows(): Promise<Array<{ id: number; name: string; version: string }>> {
    return this.#read(this.#wf.runningWorkflows, {});
  }

  async nextWorkflowTimerAt(): Promise<number | null> {
    return (await this.#first<{ at: number | null }>(this.#wf.nextTimerAt, {}))?.at ?? null;
  }

  listDeadLetters(limit: number): Promise<DeadLetterRow[]> {
    return this.#read(this.#life.listDeadLetters, { limit });
  }

  async countDeadLetters(): Promise<number> {
    return (await this.#first<{ count: number }>(this.#life.countDeadLetters, {}))?.count ?? 0;
  }

  countByStatusAndType(): Promise<Array<{ status: string; type: string; count: number }>> {
    return this.#read(this.#life.countByStatusAndType, {});
  }

  async oldestDueRunAt(now: number): Promise<number | null> {
    return (await this.#first<{ at: number | null }>(this.#life.oldestDueRunAt, { now }))?.at ?? null;
  }

  async countFinishedSince(since: number): Promise<Record<string, number>> {
    const counts: Record<string, number> = {};
    for (const row of await this.#read<{ status: string; count: number }>(this.#life.countFinishedSince, { since })) counts[row.status] = row.count;
    return counts;
  }

  onExternalChange(listener: () => void): () => void {
    this.#changeListeners.add(listener);
    if (!this.#listener && !this.#closed) {
      this.#listener = new ChangeListener(this.#settings.listenerConfig, this.#selfId, () => {
        for (const callback of [...this.#changeListeners]) callback();
      }, this.#settings.changeIntervalMs);
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

  /** Runs a raw SQL statement (for tests and tools that inspect the database). */
  async execute(statement: string): Promise<unknown[]> {
    return (await this.#pool.query(statement)).rows;
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

function byClaimOrder(a: ClaimedRow, b: ClaimedRow): number {
  return b.priority - a.priority || a.run_at - b.run_at || a.id - b.id;
}

/**
 * Runs the commit statements (simple protocol), handing the `xid` column's value to `onXid` as
 * soon as its row arrives: if the connection then fails, the caller still knows which
 * transaction to ask about. Resolves with the xid (null: the transaction wrote nothing).
 */
function commitReportingXid(client: pg.PoolClient, text: string, onXid: (xid: string | null) => void): Promise<string | null> {
  return new Promise((resolve, reject) => {
    let xid: string | null = null;
    const query = new pg.Query(text);
    query.on('row', (row: { xid?: string | null }) => {
      if ('xid' in row) onXid((xid = row.xid ?? null));
    });
    query.on('error', reject);
    query.on('end', () => resolve(xid));
    client.query(query);
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
