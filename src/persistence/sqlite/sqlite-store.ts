import type BetterSqlite3 from 'better-sqlite3';
import { Kysely, sql } from 'kysely';
import type { PreparedQuery } from '../prepared.js';
import { buildLifecycleQueries, type LifecycleQueries } from '../lifecycle-queries.js';
import { buildQueries, type Queries } from '../queries.js';
import { buildWorkflowQueries, type WorkflowQueries } from '../workflow-queries.js';
import type { Database, PromiseRow, WorkflowRow } from '../schema.js';
import type { ClaimedRow, DeadLetterRow, ExpiredLease, HistoryRow, PromiseFilter, ScheduleRow, Store, StoreTransaction } from '../store.js';
import { DatabaseError } from '../../errors.js';
import { startBackgroundCheckpoints, type BackgroundCheckpoints } from './background-checkpoints.js';
import { ImmediateSqliteDialect } from './sqlite-dialect.js';

/** How often the background thread checkpoints the WAL into the database file. */
const CHECKPOINT_INTERVAL_MS = 200;

/** How often, and how long, a transaction retries when another process holds the write lock past busy_timeout. */
const BUSY_RETRIES = 20;
const BUSY_BACKOFF_MS = 25;

/**
 * The SQLite store: Kysely builds every statement once; better-sqlite3 runs them as cached
 * prepared statements, synchronously, inside `BEGIN IMMEDIATE` transactions that this class
 * serialises (one connection, so one transaction at a time).
 */
export class SqliteStore implements Store {
  readonly #connection: BetterSqlite3.Database;
  readonly #builder: Kysely<Database>;
  readonly #statements = new Map<string, BetterSqlite3.Statement>();
  readonly #q: Queries;
  readonly #life: LifecycleQueries;
  readonly #wf: WorkflowQueries;
  readonly #tx: StoreTransaction;
  readonly #changeListeners = new Set<() => void>();
  readonly #changeCheckIntervalMs: number;
  #changeTimer: NodeJS.Timeout | undefined;
  #dataVersion = 0;
  #queue: Promise<unknown> = Promise.resolve();
  #checkpoints: BackgroundCheckpoints | undefined;
  #closed = false;

  constructor(connection: BetterSqlite3.Database, options: { changeCheckIntervalMs: number }) {
    this.#connection = connection;
    this.#changeCheckIntervalMs = options.changeCheckIntervalMs;
    this.#builder = new Kysely<Database>({ dialect: new ImmediateSqliteDialect({ database: connection }) });
    const capabilities = {
      skipLocked: false,
      inBoundList: (column: string, list: unknown) => sql<boolean>`${sql.ref(column)} in (select value from json_each(${list}))`,
    };
    this.#q = buildQueries(this.#builder, capabilities);
    this.#life = buildLifecycleQueries(this.#builder, capabilities);
    this.#wf = buildWorkflowQueries(this.#builder);
    this.#tx = this.#createTransactionApi();
  }

  #statement(query: PreparedQuery<any>): BetterSqlite3.Statement {
    let statement = this.#statements.get(query.sql);
    if (!statement) {
      statement = this.#connection.prepare(query.sql);
      this.#statements.set(query.sql, statement);
    }
    return statement;
  }

  #all<Args, Row>(query: PreparedQuery<Args>, args: Args): Row[] {
    return this.#statement(query).all(query.bind(args)) as Row[];
  }

  #get<Args, Row>(query: PreparedQuery<Args>, args: Args): Row | undefined {
    return this.#statement(query).get(query.bind(args)) as Row | undefined;
  }

  #run<Args>(query: PreparedQuery<Args>, args: Args): number {
    return this.#statement(query).run(query.bind(args)).changes;
  }

  #createTransactionApi(): StoreTransaction {
    const q = this.#q;
    const life = this.#life;
    const wf = this.#wf;
    return {
      insertPromise: (row) => this.#get<typeof row, { id: number }>(q.insertPromise, row)!.id,
      insertDependency: (parentId, childId) => {
        this.#run(q.insertDependency, { parentId, childId });
      },
      idByKey: (key) => this.#get<{ key: string }, { id: number }>(q.idByKey, { key })?.id,
      statusOf: (id) => this.#get<{ id: number }, { status: string }>(q.statusOf, { id })?.status,
      stateOf: (id) => this.#get(q.stateOf, { id }),
      getPromiseRunAt: (id) => this.#get<{ id: number }, { run_at: number }>(q.runAtOf, { id })?.run_at,
      // RETURNING does not keep the subquery's order; the claim order is part of the contract.
      claimDue: (request) =>
        this.#all<object, ClaimedRow>(q.claimDue, { ...request, types: JSON.stringify(request.types) }).sort(byClaimOrder),
      updateState: (update) => this.#run(q.updateState, update) === 1,
      releaseReadyChildren: (update) => this.#all(q.releaseReadyChildren, update),
      failWaitingDescendants: (update) => this.#all(q.failWaitingDescendants, update),
      reviveFailedDescendants: (update) => this.#all(q.reviveFailedDescendants, update),
      parentStatesOf: (id) => this.#all(q.parentStatesOf, { id }),
      releaseAllReadyWaiting: (update) => this.#all(q.releaseAllReadyWaiting, update),
      waitingWithFailedParent: () => this.#all(q.waitingWithFailedParent, {}),
      expiredLeases: (now, limit) => this.#all<{ now: number; limit: number }, ExpiredLease>(q.expiredLeases, { now, limit }),
      leasesOwnedBy: (owner) => this.#all<{ owner: string }, ExpiredLease>(q.leasesOwnedBy, { owner }),
      renewLeases: (owner, leaseExpiresAt, now) => this.#all(q.renewLeases, { owner, leaseExpiresAt, now }),
      saveProgress: (id, leaseToken, current, total, now) => this.#run(q.saveProgress, { id, leaseToken, current, total, now }) === 1,
      repairSnapshot: (id, status, snapshot) => {
        this.#run(q.repairSnapshot, { id, status, snapshot });
      },
      insertHistory: (entry) => {
        this.#run(life.insertHistory, entry);
      },
      insertDeadLetter: (id, errorCode, errorMessage, failedAt) => {
        this.#run(life.insertDeadLetter, { id, errorCode, errorMessage, failedAt });
      },
      deleteDeadLettersOf: (id) => {
        this.#run(life.deleteDeadLettersOf, { id });
      },
      clearDeadLetters: () => this.#run(life.clearDeadLetters, {}),
      deleteExpired: (now, limit) => this.#run(life.deleteExpired, { now, limit }),
      deleteFinishedBefore: (cutoff, limit) => this.#run(life.deleteFinishedBefore, { cutoff, limit }),
      upsertSchedule: (name, cron, timezone, now) => {
        this.#run(life.upsertSchedule, { name, cron, timezone, now });
      },
      getSchedule: (name) => this.#get<{ name: string }, ScheduleRow>(life.getSchedule, { name }),
      advanceSchedule: (name, dueAt, now) => this.#run(life.advanceSchedule, { name, dueAt, now }) === 1,
      stalePending: (types, cutoff) => this.#all<object, ExpiredLease>(life.stalePending, { types: JSON.stringify(types), cutoff }),
      insertWorkflow: (row) => this.#get<typeof row, { id: number }>(wf.insertWorkflow, row)!.id,
      getWorkflow: (id) => this.#get(wf.getWorkflow, { id }),
      saveWorkflow: (update) => {
        this.#run(wf.saveWorkflow, update);
      },
      insertWorkflowEvent: (workflowId, event, now) => this.#get<object, { id: number }>(wf.insertEvent, { workflowId, event, now })!.id,
      markWorkflowEventApplied: (id, now) => {
        this.#run(wf.markEventApplied, { id, now });
      },
      unappliedWorkflowEvents: (workflowId) => this.#all(wf.unappliedEvents, { workflowId }),
      upsertWorkflowTimer: (timer) => {
        this.#run(wf.upsertTimer, timer);
      },
      deleteWorkflowTimer: (workflowId, timerId) => this.#run(wf.deleteTimer, { workflowId, timerId }) === 1,
      latestStepOf: (workflowId, invokeId) => this.#get<object, { id: number }>(wf.latestStepOf, { workflowId, invokeId })?.id,
      workflowOfParentStep: (stepId) => this.#get<object, { id: number }>(wf.workflowOfParentStep, { stepId })?.id,
      deleteWorkflowTimers: (workflowId) => {
        this.#run(wf.deleteTimersOf, { workflowId });
      },
      dueWorkflowTimers: (now, limit) => this.#all(wf.dueTimers, { now, limit }),
      stepsOf: (workflowId) => this.#all(wf.stepsOf, { workflowId }),
    };
  }

  transaction<T>(work: (tx: StoreTransaction) => Promise<T>): Promise<T> {
    const run = this.#queue.then(() => this.#runTransaction(work));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #runTransaction<T>(work: (tx: StoreTransaction) => Promise<T>): Promise<T> {
    await this.#begin().catch((error: unknown) => Promise.reject(classifySqliteError(error)));
    try {
      const result = await work(this.#tx);
      this.#connection.exec('COMMIT');
      return result;
    } catch (error) {
      if (this.#connection.inTransaction) this.#connection.exec('ROLLBACK');
      throw classifySqliteError(error);
    }
  }

  // busy_timeout already waited inside SQLite; past it, yield to the event loop and try again
  // rather than surface SQLITE_BUSY as a lost write.
  async #begin(): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        this.#connection.exec('BEGIN IMMEDIATE');
        return;
      } catch (error) {
        const code = (error as { code?: string }).code;
        if (code !== 'SQLITE_BUSY' || attempt >= BUSY_RETRIES) throw error;
        await new Promise((resolve) => setTimeout(resolve, BUSY_BACKOFF_MS * (1 + Math.random())));
      }
    }
  }

  getPromise(id: number): PromiseRow | undefined {
    return this.#get(this.#q.getPromise, { id });
  }

  dependenciesOf(id: number): number[] {
    return this.#all<{ id: number }, { parent_id: number }>(this.#q.dependenciesOf, { id }).map((row) => row.parent_id);
  }

  listPromises(filter: PromiseFilter): PromiseRow[] {
    let query = this.#builder.selectFrom('promises').selectAll().orderBy('id', 'desc').limit(filter.limit);
    if (filter.status !== undefined) query = query.where('status', '=', filter.status);
    if (filter.type !== undefined) query = query.where('type', '=', filter.type);
    const compiled = query.compile();
    return this.#connection.prepare(compiled.sql).all(compiled.parameters as unknown[]) as PromiseRow[];
  }

  listWorkflows(filter: { status?: string; name?: string; limit: number }): WorkflowRow[] {
    let query = this.#builder.selectFrom('workflows').selectAll().orderBy('id', 'desc').limit(filter.limit);
    if (filter.status !== undefined) query = query.where('status', '=', filter.status);
    if (filter.name !== undefined) query = query.where('name', '=', filter.name);
    const compiled = query.compile();
    return this.#connection.prepare(compiled.sql).all(compiled.parameters as unknown[]) as WorkflowRow[];
  }

  nextRunAt(types: readonly string[]): number | null {
    return this.#get<object, { at: number | null }>(this.#q.nextRunAt, { types: JSON.stringify(types) })?.at ?? null;
  }

  nextLeaseExpiry(): number | null {
    return this.#get<object, { at: number | null }>(this.#q.nextLeaseExpiry, {})?.at ?? null;
  }

  *unfinished(): Iterable<{ id: number; status: string; snapshot: string; lease_owner: string | null }> {
    const query = this.#q.unfinished;
    // A separate statement object: iterate() keeps it busy until the loop ends.
    yield* this.#connection.prepare(query.sql).iterate(query.bind({})) as Iterable<{
      id: number;
      status: string;
      snapshot: string;
      lease_owner: string | null;
    }>;
  }

  historyOf(id: number): HistoryRow[] {
    return this.#all(this.#life.historyOf, { id });
  }

  getWorkflow(id: number): WorkflowRow | undefined {
    return this.#get(this.#wf.getWorkflow, { id });
  }

  stepsOf(workflowId: number): PromiseRow[] {
    return this.#all(this.#wf.stepsOf, { workflowId });
  }

  runningWorkflows(): Array<{ id: number; name: string; version: string }> {
    return this.#all(this.#wf.runningWorkflows, {});
  }

  nextWorkflowTimerAt(): number | null {
    return this.#get<object, { at: number | null }>(this.#wf.nextTimerAt, {})?.at ?? null;
  }

  listDeadLetters(limit: number): DeadLetterRow[] {
    return this.#all(this.#life.listDeadLetters, { limit });
  }

  countDeadLetters(): number {
    return this.#get<object, { count: number }>(this.#life.countDeadLetters, {})?.count ?? 0;
  }

  countByStatusAndType(): Array<{ status: string; type: string; count: number }> {
    return this.#all(this.#life.countByStatusAndType, {});
  }

  oldestDueRunAt(now: number): number | null {
    return this.#get<object, { at: number | null }>(this.#life.oldestDueRunAt, { now })?.at ?? null;
  }

  countFinishedSince(since: number): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const row of this.#all<object, { status: string; count: number }>(this.#life.countFinishedSince, { since })) counts[row.status] = row.count;
    return counts;
  }

  async startMaintenance(): Promise<void> {
    if (this.#checkpoints || this.#connection.memory || this.#closed) return;
    try {
      this.#checkpoints = await startBackgroundCheckpoints(this.#connection.name, CHECKPOINT_INTERVAL_MS);
      this.#connection.pragma('wal_autocheckpoint = 0');
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
    return this.#connection.pragma('data_version', { simple: true }) as number;
  }

  #checkForExternalChange(): void {
    if (this.#closed) return;
    const version = this.#readDataVersion();
    if (version === this.#dataVersion) return;
    this.#dataVersion = version;
    for (const listener of this.#changeListeners) listener();
  }

  /** Runs a raw SQL statement (for tests and tools that inspect the file). */
  async execute(statement: string): Promise<unknown[]> {
    return (await sql.raw(statement).execute(this.#builder)).rows;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    await this.#queue;
    this.#closed = true;
    await this.#checkpoints?.stop();
    if (this.#changeTimer) clearInterval(this.#changeTimer);
    this.#changeListeners.clear();
    this.#connection.close();
  }
}

/**
 * SQLite's failures that a caller can act on become typed errors; the transaction was rolled
 * back, so nothing of it was written. Anything else (a bug, a refused input) passes unchanged.
 */
function classifySqliteError(error: unknown): unknown {
  const code = (error as { code?: unknown })?.code;
  if (typeof code !== 'string' || !code.startsWith('SQLITE_')) return error;
  const message = (error as Error).message;
  if (code === 'SQLITE_FULL') return new DatabaseError('DATABASE_FULL', `the database or its disk is full: ${message}; nothing of this transaction was written`, { cause: error });
  if (code.startsWith('SQLITE_BUSY')) return new DatabaseError('DATABASE_BUSY', `another process held the write lock too long: ${message}; nothing was written, try again`, { cause: error });
  if (code.startsWith('SQLITE_READONLY')) return new DatabaseError('DATABASE_READ_ONLY', `the database became read-only: ${message}`, { cause: error });
  if (code.startsWith('SQLITE_IOERR') || code === 'SQLITE_CORRUPT' || code === 'SQLITE_CANTOPEN') {
    return new DatabaseError('DATABASE_UNAVAILABLE', `the database cannot be written: ${message}`, { cause: error });
  }
  return error;
}

function byClaimOrder(a: ClaimedRow, b: ClaimedRow): number {
  return b.priority - a.priority || a.run_at - b.run_at || a.id - b.id;
}
