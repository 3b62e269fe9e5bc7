import { andThen } from './awaitable.js';
import { all, first, run, type Queryable } from './connection.js';
import type { SqlDialect } from './sql-dialect.js';
import type { Statement } from './statement.js';
import type { StatementTable } from './statement-table.js';
import type { WorkflowHistoryRow, WorkflowRow } from './schema.js';
import type { Awaitable, ClaimedRow, ClaimRequest, DebounceMerge, HistoryEntry, KeyHolder, UnstartedRow, KeptEventRow, NewPromise, NewWorkflow, NewWorkflowEvent, RelativesUpdate, RowRef, StateUpdate, StoreTransaction, WorkflowUpdate } from './store.js';

/**
 * The operations of one transaction attempt, written once over any dialect's connection: each
 * is one statement of the table (a sweep may repeat its statement; a release first takes its
 * locks). A new object per attempt: nothing of an attempt that rolled back reaches the next.
 */
export class SqlStoreTransaction implements StoreTransaction {
  readonly #tx: Queryable;
  readonly #s: StatementTable;
  readonly #dialect: SqlDialect;

  constructor(tx: Queryable, statements: StatementTable, dialect: SqlDialect) {
    this.#tx = tx;
    this.#s = statements;
    this.#dialect = dialect;
  }

  insertPromise(row: NewPromise): Awaitable<number> {
    const defaults = { flowKey: null, rateKey: null, expireIn: null, startBy: null, keyTtl: null, debounceKey: null };
    return andThen(first(this.#tx, this.#s.promises.insertPromise, { ...defaults, ...row }), (inserted) => inserted!.id);
  }

  insertDependency(parentId: number, childId: number): Awaitable<void> {
    return this.#quiet(run(this.#tx, this.#s.dependencies.insertDependency, { parentId, childId }));
  }

  keyHolder(key: string): Awaitable<KeyHolder | undefined> {
    return andThen(first(this.#tx, this.#s.promises.keyHolder, { key }), (row) =>
      row === undefined ? undefined : { id: row.id, completed_at: row.completed_at === null ? null : Number(row.completed_at), key_ttl: row.key_ttl === null ? null : Number(row.key_ttl) },
    );
  }

  forgetKey(id: number, key: string): Awaitable<boolean> {
    return andThen(run(this.#tx, this.#s.promises.forgetKey, { id, key }), (count) => count === 1);
  }

  pendingDebounced(type: string, key: string): Awaitable<{ id: number; created_at: number } | undefined> {
    return andThen(first(this.#tx, this.#s.grouping.pendingDebounced, { type, key }), (row) => (row === undefined ? undefined : { id: row.id, created_at: Number(row.created_at) }));
  }

  mergeDebounced(merge: DebounceMerge): Awaitable<boolean> {
    return andThen(run(this.#tx, this.#s.grouping.mergeDebounced, merge), (count) => count === 1);
  }

  overdueUnstarted(types: readonly string[], now: number, limit: number): Awaitable<UnstartedRow[]> {
    return all(this.#tx, this.#s.deadlines.overdueUnstarted, { types, now, limit });
  }

  readyBatchKeys(request: { type: string; dueBy: number; size: number; readyBefore: number; limit: number }): Awaitable<Array<{ key: string; count: number; oldest: number }>> {
    return andThen(all(this.#tx, this.#s.grouping.readyBatchKeys, request), (rows) => rows.map((row) => ({ key: row.key!, count: Number(row.n), oldest: Number(row.oldest) })));
  }

  batchState(type: string, key: string, dueBy: number): Awaitable<{ count: number; oldest: number | null }> {
    return andThen(first(this.#tx, this.#s.grouping.batchState, { type, key, dueBy }), (row) => ({
      count: Number(row?.n ?? 0),
      oldest: row?.oldest === null || row?.oldest === undefined ? null : Number(row.oldest),
    }));
  }

  oldestRunnable(type: string, dueBy: number): Awaitable<number | null> {
    return andThen(first(this.#tx, this.#s.grouping.oldestRunnable, { type, dueBy }), (row) => (row?.oldest === null || row?.oldest === undefined ? null : Number(row.oldest)));
  }

  statusOf(id: number): Awaitable<string | undefined> {
    return andThen(first(this.#tx, this.#s.promises.statusOf, { id }), (row) => row?.status);
  }

  stateOf(id: number) {
    return first(this.#tx, this.#s.promises.stateOf, { id });
  }

  getPromiseRunAt(id: number): Awaitable<number | undefined> {
    return andThen(first(this.#tx, this.#s.promises.runAtOf, { id }), (row) => row?.run_at);
  }

  claimDue(request: ClaimRequest): Awaitable<ClaimedRow[]> {
    // RETURNING does not keep the subquery's order; the claim order is part of the contract.
    return andThen(all(this.#tx, this.#s.claims.claimDue, request), (rows) => rows.sort(byClaimOrder));
  }

  updateState(update: StateUpdate): Awaitable<boolean> {
    return andThen(run(this.#tx, this.#s.promises.updateState, update), (count) => count === 1);
  }

  releaseReadyChildren(update: RelativesUpdate): Awaitable<RowRef[]> {
    const { relatives } = this.#s;
    return andThen(this.#lock(relatives.lockWaitingChildren, { parentId: update.parentId }), () => all(this.#tx, relatives.releaseReadyChildren, update));
  }

  failWaitingDescendants(update: RelativesUpdate): Awaitable<RowRef[]> {
    return this.#sweep(this.#s.relatives.failWaitingDescendants, update);
  }

  reviveFailedDescendants(update: RelativesUpdate): Awaitable<RowRef[]> {
    return all(this.#tx, this.#s.relatives.reviveFailedDescendants, update);
  }

  parentStatesOf(id: number): Awaitable<Array<{ id: number; status: string }>> {
    return all(this.#tx, this.#s.dependencies.parentStatesOf, { id });
  }

  releaseAllReadyWaiting(update: Omit<RelativesUpdate, 'parentId'>): Awaitable<RowRef[]> {
    return all(this.#tx, this.#s.relatives.releaseAllReadyWaiting, update);
  }

  waitingWithFailedParent(): Awaitable<RowRef[]> {
    return all(this.#tx, this.#s.relatives.waitingWithFailedParent, {});
  }

  expiredLeases(now: number, limit: number) {
    return all(this.#tx, this.#s.claims.expiredLeases, { now, limit });
  }

  leasesOwnedBy(owner: string) {
    return all(this.#tx, this.#s.claims.leasesOwnedBy, { owner });
  }

  renewLeases(owner: string, leaseExpiresAt: number, now: number): Awaitable<Array<{ id: number; lease_token: number }>> {
    return all(this.#tx, this.#s.claims.renewLeases, { owner, leaseExpiresAt, now });
  }

  saveProgress(id: number, leaseToken: number, current: number, total: number, now: number): Awaitable<boolean> {
    return andThen(run(this.#tx, this.#s.claims.saveProgress, { id, leaseToken, current, total, now }), (count) => count === 1);
  }

  repairSnapshot(id: number, status: string, snapshot: string): Awaitable<void> {
    return this.#quiet(run(this.#tx, this.#s.promises.repairSnapshot, { id, status, snapshot }));
  }

  setPayload(id: number, payload: string, now: number): Awaitable<void> {
    return this.#quiet(run(this.#tx, this.#s.promises.setPayload, { id, payload, now }));
  }

  insertHistory(entry: HistoryEntry): Awaitable<void> {
    return this.#quiet(run(this.#tx, this.#s.history.insertHistory, entry));
  }

  insertDeadLetter(id: number, errorCode: string, errorMessage: string, failedAt: number): Awaitable<void> {
    return this.#quiet(run(this.#tx, this.#s.deadLetters.insertDeadLetter, { id, errorCode, errorMessage, failedAt }));
  }

  deleteDeadLettersOf(id: number): Awaitable<void> {
    return this.#quiet(run(this.#tx, this.#s.deadLetters.deleteDeadLettersOf, { id }));
  }

  clearDeadLetters(): Awaitable<number> {
    return run(this.#tx, this.#s.deadLetters.clearDeadLetters, {});
  }

  deleteExpired(now: number, limit: number): Awaitable<number> {
    return run(this.#tx, this.#s.cleanup.deleteExpired, { now, limit });
  }

  deleteFinishedBefore(cutoff: number, limit: number): Awaitable<number> {
    return run(this.#tx, this.#s.cleanup.deleteFinishedBefore, { cutoff, limit });
  }

  upsertSchedule(name: string, cron: string, timezone: string | null, now: number): Awaitable<void> {
    return this.#quiet(run(this.#tx, this.#s.schedules.upsertSchedule, { name, cron, timezone, now }));
  }

  getSchedule(name: string) {
    return first(this.#tx, this.#s.schedules.getSchedule, { name });
  }

  advanceSchedule(name: string, dueAt: number, now: number): Awaitable<boolean> {
    return andThen(run(this.#tx, this.#s.schedules.advanceSchedule, { name, dueAt, now }), (count) => count === 1);
  }

  stalePending(types: readonly string[], cutoff: number) {
    return all(this.#tx, this.#s.claims.stalePending, { types, cutoff });
  }

  insertWorkflow(row: NewWorkflow): Awaitable<number | undefined> {
    return andThen(first(this.#tx, this.#s.workflows.insertWorkflow, row), (inserted) => inserted?.id);
  }

  workflowByKey(key: string): Awaitable<{ id: number; name: string } | undefined> {
    return first(this.#tx, this.#s.workflows.workflowByKey, { key });
  }

  /** Read to be advanced and written back: locked for the change (see the statement). */
  getWorkflow(id: number): Awaitable<WorkflowRow | undefined> {
    return first(this.#tx, this.#s.workflows.getWorkflowForUpdate, { id });
  }

  saveWorkflow(update: WorkflowUpdate): Awaitable<void> {
    return this.#quiet(run(this.#tx, this.#s.workflows.saveWorkflow, update));
  }

  setWorkflowVersion(id: number, version: string): Awaitable<void> {
    return this.#quiet(run(this.#tx, this.#s.workflows.setWorkflowVersion, { id, version }));
  }

  reassignStepInvocation(workflowId: number, from: string, to: string, now: number): Awaitable<void> {
    return this.#quiet(run(this.#tx, this.#s.workflows.reassignStepInvocation, { workflowId, from, to, now }));
  }

  markCancelRequested(id: number, now: number): Awaitable<void> {
    return this.#quiet(run(this.#tx, this.#s.workflows.markCancelRequested, { id, now }));
  }

  async setAwaiting(workflowId: number, eventTypes: readonly string[]): Promise<void> {
    await run(this.#tx, this.#s.workflowAwaiting.clearAwaiting, { workflowId });
    for (const eventType of new Set(eventTypes)) await run(this.#tx, this.#s.workflowAwaiting.insertAwaiting, { workflowId, eventType });
  }

  insertWorkflowTransition(row: WorkflowHistoryRow): Awaitable<void> {
    return this.#quiet(run(this.#tx, this.#s.workflowHistory.insertWorkflowTransition, row));
  }

  workflowTransition(workflowId: number, seq: number): Awaitable<WorkflowHistoryRow | undefined> {
    return first(this.#tx, this.#s.workflowHistory.workflowTransition, { workflowId, seq });
  }

  setWorkflowPaused(id: number, pausedAt: number | null, now: number): Awaitable<void> {
    return this.#quiet(run(this.#tx, this.#s.workflows.setWorkflowPaused, { id, pausedAt, now }));
  }

  holdWorkflowWork(workflowId: number, offset: number, now: number): Awaitable<void> {
    const steps = run(this.#tx, this.#s.workflows.holdPendingSteps, { workflowId, offset, now });
    return andThen(steps, () => this.#quiet(run(this.#tx, this.#s.workflowTimers.holdWorkflowTimers, { workflowId, offset })));
  }

  releaseWorkflowWork(workflowId: number, offset: number, now: number): Awaitable<void> {
    const steps = run(this.#tx, this.#s.workflows.releaseHeldSteps, { workflowId, offset, now });
    return andThen(steps, () => this.#quiet(run(this.#tx, this.#s.workflowTimers.releaseWorkflowTimers, { workflowId, offset })));
  }

  insertWorkflowEvent(event: NewWorkflowEvent): Awaitable<number> {
    return andThen(first(this.#tx, this.#s.workflowEvents.insertWorkflowEvent, event), (inserted) => inserted!.id);
  }

  markWorkflowEventApplied(id: number, now: number): Awaitable<void> {
    return this.#quiet(run(this.#tx, this.#s.workflowEvents.markWorkflowEventApplied, { id, now }));
  }

  keptWorkflowEvents(workflowId: number, now: number): Awaitable<KeptEventRow[]> {
    return all(this.#tx, this.#s.workflowEvents.keptWorkflowEvents, { workflowId, now });
  }

  workflowEventByKey(workflowId: number, key: string) {
    return first(this.#tx, this.#s.workflowEvents.workflowEventByKey, { workflowId, key });
  }

  lastAppliedEventAt(workflowId: number, type: string): Awaitable<number | undefined> {
    return andThen(first(this.#tx, this.#s.workflowEvents.lastAppliedEventAt, { workflowId, type }), (row) => (row?.at === null || row?.at === undefined ? undefined : Number(row.at)));
  }

  discardWorkflowEvent(workflowId: number, id: number, reason: string, now: number): Awaitable<boolean> {
    return andThen(run(this.#tx, this.#s.workflowEvents.discardWorkflowEvent, { workflowId, id, reason, now }), (count) => count === 1);
  }

  discardKeptEvents(workflowId: number, reason: string, now: number): Awaitable<void> {
    return this.#quiet(run(this.#tx, this.#s.workflowEvents.discardKeptEvents, { workflowId, reason, now }));
  }

  timersOf(workflowId: number) {
    return all(this.#tx, this.#s.workflowTimers.timersOf, { workflowId });
  }

  upsertWorkflowTimer(timer: { workflowId: number; timerId: string; event: string; fireAt: number; now: number }): Awaitable<void> {
    return this.#quiet(run(this.#tx, this.#s.workflowTimers.upsertWorkflowTimer, timer));
  }

  deleteWorkflowTimer(workflowId: number, timerId: string): Awaitable<boolean> {
    return andThen(run(this.#tx, this.#s.workflowTimers.deleteWorkflowTimer, { workflowId, timerId }), (count) => count === 1);
  }

  workflowOfParentStep(stepId: number): Awaitable<number | undefined> {
    return andThen(first(this.#tx, this.#s.workflows.workflowOfParentStep, { stepId }), (row) => row?.id);
  }

  latestStepOf(workflowId: number, invokeId: string): Awaitable<number | undefined> {
    return andThen(first(this.#tx, this.#s.workflows.latestStepOf, { workflowId, invokeId }), (row) => row?.id);
  }

  deleteWorkflowTimers(workflowId: number): Awaitable<void> {
    return this.#quiet(run(this.#tx, this.#s.workflowTimers.deleteWorkflowTimers, { workflowId }));
  }

  dueWorkflowTimers(now: number, limit: number) {
    return all(this.#tx, this.#s.workflowTimers.dueWorkflowTimers, { now, limit });
  }

  stepsOf(workflowId: number) {
    return all(this.#tx, this.#s.workflows.stepsOf, { workflowId });
  }

  pauseType(type: string, now: number): Awaitable<void> {
    return this.#quiet(run(this.#tx, this.#s.flow.pauseType, { type, now }));
  }

  resumeType(type: string): Awaitable<boolean> {
    return andThen(run(this.#tx, this.#s.flow.resumeType, { type }), (count) => count > 0);
  }

  ensureFlowKey(type: string, key: string): Awaitable<void> {
    return this.#quiet(run(this.#tx, this.#s.flow.ensureFlowKey, { type, key }));
  }

  lockFlowKey(type: string, key: string): Awaitable<boolean> {
    if (!this.#dialect.rowLocks) return true;
    const ensured = run(this.#tx, this.#s.flow.ensureFlowKey, { type, key });
    return andThen(ensured, () => andThen(all(this.#tx, this.#s.flow.lockFlowKey, { type, key }), (rows) => rows.length > 0));
  }

  lockTypeCap(type: string): Awaitable<void> {
    if (!this.#dialect.rowLocks) return;
    const key = '*';
    return andThen(run(this.#tx, this.#s.flow.ensureFlowKey, { type, key }), () => this.#lock(this.#s.flow.lockTypeCap, { type, key }));
  }

  readyFlowKeys(request: { type: string; dueBy: number; keyLimit: number; limit: number }): Awaitable<Array<{ key: string; running: number }>> {
    return andThen(all(this.#tx, this.#s.flow.readyFlowKeys, request), (rows) => rows.map((row) => ({ key: row.key, running: Number(row.running ?? 0) })));
  }

  claimNextOfKey(request: Omit<ClaimRequest, 'types'> & { type: string; key: string }): Awaitable<ClaimedRow[]> {
    return andThen(all(this.#tx, this.#s.flow.claimNextOfKey, request), (rows) => rows.sort(byClaimOrder));
  }

  get serialized(): boolean {
    return !this.#dialect.rowLocks;
  }

  countRunning(type: string, key: string | null): Awaitable<number> {
    const counted = key === null ? first(this.#tx, this.#s.flow.countRunning, { type }) : first(this.#tx, this.#s.flow.countRunningOfKey, { type, key });
    return andThen(counted, (row) => Number(row?.n ?? 0));
  }

  nextDue(request: { type: string; key: string | null; dueBy: number; limit: number }) {
    return all(this.#tx, this.#s.flow.nextDue, request);
  }

  claimById(request: Omit<ClaimRequest, 'types' | 'limit' | 'dueBy'> & { id: number }): Awaitable<ClaimedRow | undefined> {
    return first(this.#tx, this.#s.flow.claimById, request);
  }

  claimReadyKeys(request: Omit<ClaimRequest, 'types'> & { type: string; keyLimit: number }): Awaitable<ClaimedRow[]> {
    return andThen(all(this.#tx, this.#s.flow.claimReadyKeys, request), (rows) => {
      if (rows.length === 0) return [];
      const keys = [...new Set(rows.map((row) => row.flow_key!))];
      return andThen(run(this.#tx, this.#s.flow.markKeysStarted, { type: request.type, keys, now: request.now }), () => rows.sort(byClaimOrder));
    });
  }

  markKeyStarted(type: string, key: string, now: number): Awaitable<void> {
    return this.#quiet(run(this.#tx, this.#s.flow.markKeyStarted, { type, key, now }));
  }

  recentStarts(type: string, key: string, since: number): Awaitable<{ count: number; oldest: number | null }> {
    return andThen(first(this.#tx, this.#s.flow.recentStarts, { type, key, since }), (row) => ({
      count: Number(row?.n ?? 0),
      oldest: row?.oldest === null || row?.oldest === undefined ? null : Number(row.oldest),
    }));
  }

  recordStart(type: string, key: string, at: number, forgetBefore: number): Awaitable<void> {
    return andThen(run(this.#tx, this.#s.flow.pruneStarts, { type, key, before: forgetBefore }), () => this.#quiet(run(this.#tx, this.#s.flow.recordStart, { type, key, at })));
  }

  /** Takes a statement's row locks; nothing where the dialect has none (one writer at a time). */
  #lock<Args>(statement: Statement<Args>, args: Args): Awaitable<void> {
    if (!this.#dialect.rowLocks) return;
    return this.#quiet(this.#tx.query(statement, args));
  }

  /**
   * Runs a bulk transition until it finds nothing, where a statement's snapshot may predate a
   * row lock it waited on: the enqueue that held it added edges the first run could not see.
   */
  #sweep(statement: Statement<RelativesUpdate, RowRef>, update: RelativesUpdate): Awaitable<RowRef[]> {
    const once = all(this.#tx, statement, update);
    if (!this.#dialect.snapshotPerStatement) return once;
    const more = (moved: RowRef[], rows: RowRef[]): Awaitable<RowRef[]> =>
      rows.length === 0 ? moved : andThen(all(this.#tx, statement, update), (next) => more([...moved, ...rows], next));
    return andThen(once, (rows) => more([], rows));
  }

  #quiet(result: Awaitable<unknown>): Awaitable<void> {
    return andThen(result, () => undefined);
  }
}

function byClaimOrder(a: ClaimedRow, b: ClaimedRow): number {
  return b.priority - a.priority || a.run_at - b.run_at || a.id - b.id;
}
