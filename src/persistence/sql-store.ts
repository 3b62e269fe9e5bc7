import { andThen } from './awaitable.js';
import { all, first, type StoreConnection } from './connection.js';
import { buildStatementTable, type StatementTable } from './statement-table.js';
import { SqlStoreTransaction } from './sql-store-transaction.js';
import type { PromiseRow, WorkflowHistoryRow, WorkflowRow, WorkflowTimerRow } from './schema.js';
import type { Awaitable, DeadLetterRow, ScheduleRow, HistoryRow, KeptEventRow, PromiseFilter, PromisePageQuery, Store, StoreTransaction } from './store.js';

/**
 * The store, written once: every read and every transaction is a statement of the table, run
 * on whichever dialect's connection it was given (SQLite answers synchronously, PostgreSQL with
 * promises; the store keeps that, so SQLite calls cost no microtask).
 *
 * @example
 * ```ts
 * const store = await openSqliteStore({ filename: './promised.db' });
 * const row = await store.getPromise(1);
 * ```
 */
export class SqlStore implements Store {
  readonly #connection: StoreConnection;
  readonly #s: StatementTable;

  constructor(connection: StoreConnection) {
    this.#connection = connection;
    this.#s = buildStatementTable(connection.dialect);
  }

  transaction<T>(work: (tx: StoreTransaction) => Promise<T>): Promise<T> {
    return this.#connection.transaction((tx) => work(new SqlStoreTransaction(tx, this.#s, this.#connection.dialect)));
  }

  getPromise(id: number): Awaitable<PromiseRow | undefined> {
    return first(this.#connection, this.#s.promises.getPromise, { id });
  }

  dependenciesOf(id: number): Awaitable<number[]> {
    return andThen(all(this.#connection, this.#s.dependencies.parentsOf, { id }), (rows) => rows.map((row) => row.parent_id));
  }

  parentResultsOf(id: number): Awaitable<Array<{ id: number; result: string | null }>> {
    return all(this.#connection, this.#s.dependencies.parentResultsOf, { id });
  }

  dependenciesOfMany(ids: number[]): Awaitable<Map<number, number[]>> {
    const parents = new Map<number, number[]>(ids.map((id) => [id, []]));
    if (ids.length === 0) return parents;
    return andThen(all(this.#connection, this.#s.dependencies.parentsOfMany, { ids }), (rows) => {
      for (const row of rows) parents.get(row.child_id)?.push(row.parent_id);
      return parents;
    });
  }

  childrenOf(id: number): Awaitable<number[]> {
    return andThen(all(this.#connection, this.#s.dependencies.childrenOf, { id }), (rows) => rows.map((row) => row.child_id));
  }

  listPromises(filter: PromiseFilter): Awaitable<PromiseRow[]> {
    return all(this.#connection, this.#s.promises.listPromises, { status: filter.status ?? null, type: filter.type ?? null, limit: filter.limit });
  }

  pageOfPromises(query: PromisePageQuery): Awaitable<PromiseRow[]> {
    return all(this.#connection, this.#s.promisePages.pageOfPromises, query);
  }

  newestPromiseId(): Awaitable<number | null> {
    return andThen(first(this.#connection, this.#s.promisePages.newestPromiseId, {}), (row) => (row?.id === null || row?.id === undefined ? null : Number(row.id)));
  }

  nextRunAt(types: readonly string[], after: number): Awaitable<number | null> {
    return andThen(first(this.#connection, this.#s.claims.nextRunAt, { types, after }), (row) => row?.at ?? null);
  }

  nextStartBy(types: readonly string[]): Awaitable<number | null> {
    if (types.length === 0) return null;
    return andThen(first(this.#connection, this.#s.deadlines.nextStartBy, { types }), (row) => (row?.at === null || row?.at === undefined ? null : Number(row.at)));
  }

  nextLeaseExpiry(): Awaitable<number | null> {
    return andThen(first(this.#connection, this.#s.claims.nextLeaseExpiry, {}), (row) => row?.at ?? null);
  }

  unfinished() {
    return this.#connection.stream(this.#s.promises.unfinished, {});
  }

  historyOf(id: number): Awaitable<HistoryRow[]> {
    return all(this.#connection, this.#s.history.historyOf, { id });
  }

  getWorkflow(id: number): Awaitable<WorkflowRow | undefined> {
    return first(this.#connection, this.#s.workflows.getWorkflow, { id });
  }

  stepsOf(workflowId: number): Awaitable<PromiseRow[]> {
    return all(this.#connection, this.#s.workflows.stepsOf, { workflowId });
  }

  runningWorkflows(): Awaitable<Array<{ id: number; name: string; version: string }>> {
    return all(this.#connection, this.#s.workflows.runningWorkflows, {});
  }

  listWorkflows(filter: { status?: string; name?: string; limit: number }): Awaitable<WorkflowRow[]> {
    return all(this.#connection, this.#s.workflows.listWorkflows, { status: filter.status ?? null, name: filter.name ?? null, limit: filter.limit });
  }

  listAwaitingWorkflows(filter: { types: readonly string[]; name?: string; limit: number }): Awaitable<WorkflowRow[]> {
    return all(this.#connection, this.#s.workflowAwaiting.listAwaitingWorkflows, { types: filter.types, name: filter.name ?? null, limit: filter.limit });
  }

  nextWorkflowTimerAt(): Awaitable<number | null> {
    return andThen(first(this.#connection, this.#s.workflowTimers.nextWorkflowTimerAt, {}), (row) => row?.at ?? null);
  }

  listSchedules(): Awaitable<ScheduleRow[]> {
    return all(this.#connection, this.#s.schedules.listSchedules, {});
  }

  keysWithWork(limit: number): Awaitable<Array<{ type: string; key: string; running: number; pending: number }>> {
    return andThen(all(this.#connection, this.#s.flowReports.keysWithWork, { limit }), (rows) =>
      rows.map((row) => ({ type: row.type, key: row.key!, running: Number(row.running), pending: Number(row.pending) })),
    );
  }

  pausedTypes(): Awaitable<Array<{ type: string; paused_at: number }>> {
    return all(this.#connection, this.#s.flow.pausedTypes, {});
  }

  keptWorkflowEvents(workflowId: number, now: number): Awaitable<KeptEventRow[]> {
    return all(this.#connection, this.#s.workflowEvents.keptWorkflowEvents, { workflowId, now });
  }

  workflowTransitionAt(workflowId: number, seq: number): Awaitable<WorkflowHistoryRow | undefined> {
    return first(this.#connection, this.#s.workflowHistory.workflowTransition, { workflowId, seq });
  }

  timersOf(workflowId: number): Awaitable<WorkflowTimerRow[]> {
    return all(this.#connection, this.#s.workflowTimers.timersOf, { workflowId });
  }

  workflowTransitions(workflowId: number) {
    return all(this.#connection, this.#s.workflowHistory.workflowTransitions, { workflowId });
  }

  listDeadLetters(limit: number): Awaitable<DeadLetterRow[]> {
    return all(this.#connection, this.#s.deadLetters.listDeadLetters, { limit });
  }

  countDeadLetters(): Awaitable<number> {
    return andThen(first(this.#connection, this.#s.deadLetters.countDeadLetters, {}), (row) => row?.count ?? 0);
  }

  countByStatusAndType(): Awaitable<Array<{ status: string; type: string; count: number }>> {
    return all(this.#connection, this.#s.stats.countByStatusAndType, {});
  }

  oldestDueRunAt(now: number): Awaitable<number | null> {
    return andThen(first(this.#connection, this.#s.stats.oldestDueRunAt, { now }), (row) => row?.at ?? null);
  }

  countFinishedSince(since: number): Awaitable<Record<string, number>> {
    return andThen(all(this.#connection, this.#s.stats.countFinishedSince, { since }), (rows) => {
      const counts: Record<string, number> = {};
      for (const row of rows) counts[row.status] = row.count;
      return counts;
    });
  }

  startMaintenance(): Promise<void> {
    return this.#connection.startMaintenance();
  }

  onExternalChange(listener: () => void): () => void {
    return this.#connection.onExternalChange(listener);
  }

  /** Runs a raw SQL statement (for tests and tools that inspect the database). */
  execute(statement: string): Promise<unknown[]> {
    return this.#connection.execute(statement);
  }

  close(): Promise<void> {
    return this.#connection.close();
  }
}
