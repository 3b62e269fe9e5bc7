import type { Selectable } from 'kysely';
import type { FlowStoreTransaction } from './flow-store.js';
import type { DeadLettersTable, PromiseHistoryTable, PromiseRow, SchedulesTable, WorkflowHistoryRow, WorkflowRow, WorkflowTimerRow } from './schema.js';
import type { Awaitable, ClaimedRow, ClaimRequest } from './store-rows.js';

export type { Awaitable, ClaimedRow, ClaimRequest } from './store-rows.js';
export type { DebounceMerge, FlowStoreTransaction, KeyHolder, UnstartedRow } from './flow-store.js';

/** One line of a promise's history (the exceptional transitions). */
export interface HistoryEntry {
  promiseId: number;
  event: string;
  from: string;
  to: string;
  attempt: number;
  errorCode: string | null;
  errorMessage: string | null;
  at: number;
}

export type DeadLetterRow = Selectable<DeadLettersTable>;

export type ScheduleRow = Selectable<SchedulesTable>;

export type HistoryRow = Selectable<PromiseHistoryTable>;

/** A row named by id, with its type (for events about it). */
export interface RowRef {
  id: number;
  type: string;
}

/** A promise row to insert. */
export interface NewPromise {
  type: string;
  status: string;
  priority: number;
  payload: string;
  maxAttempts: number;
  runAt: number;
  snapshot: string;
  idempotencyKey: string | null;
  errorCode: string | null;
  errorMessage: string | null;
  /** Set for a workflow step: the workflow and the invocation it runs. */
  workflowId: number | null;
  invokeId: string | null;
  /** Flow control: the keys its concurrency and rate limits count it under. */
  flowKey?: string | null;
  rateKey?: string | null;
  /** The trace context it is enqueued in, as JSON text; null (or absent): not traced. */
  traceContext?: string | null;
  /** Schedule-to-start: the allowance (ms) and, when pending now, the deadline. */
  expireIn?: number | null;
  startBy?: number | null;
  /** How long the idempotency key is remembered after the promise settles, ms. */
  keyTtl?: number | null;
  /** The debounce key enqueues of its type collapse under while it is pending. */
  debounceKey?: string | null;
  now: number;
}

/** A state change of one row, applied only if the row is still in `fromStatus` (and holds `leaseToken`, when given). */
export interface StateUpdate {
  id: number;
  fromStatus: string;
  /** When set, the update applies only to the claim holding this fencing token. */
  leaseToken: number | null;
  toStatus: string;
  snapshot: string;
  result: string | null;
  errorCode: string | null;
  errorMessage: string | null;
  /** New run-at; `null` keeps the current one. */
  runAt: number | null;
  /** Subtracted from `attempts` (1 when a graceful release hands back an attempt that did not run). */
  attemptsRefund: number;
  /** Added to `lease_losses` (1 for `LEASE_LOST`). */
  leaseLost: number;
  resetAttempts: boolean;
  completedAt: number | null;
  /** When the finished row may be cleaned up; `null`: never (or not finished). */
  expiresAt: number | null;
  now: number;
}

/** A bulk transition of rows selected by their relation to a parent. */
export interface RelativesUpdate {
  parentId: number;
  toStatus: string;
  snapshot: string;
  errorCode: string | null;
  errorMessage: string | null;
  expiresAt: number | null;
  now: number;
}

export interface ExpiredLease {
  id: number;
  type: string;
  lease_losses: number;
  workflow_id: number | null;
  invoke_id: string | null;
  attempts: number;
  max_attempts: number;
  lease_token: number;
  lease_owner: string | null;
}

export interface PromiseFilter {
  status?: string;
  type?: string;
  limit: number;
}

/** One page of promises: `floor <= id < before`, newest first; null filters match everything. */
export interface PromisePageQuery {
  status: string | null;
  type: string | null;
  errorCode: string | null;
  /** A lower-case LIKE pattern (`\\` escapes) over type, payload, error code and message. */
  search: string | null;
  before: number;
  floor: number;
  limit: number;
}

/** Operations inside one transaction. Each is one SQL statement. */
export interface StoreTransaction extends FlowStoreTransaction {
  insertPromise(row: NewPromise): Awaitable<number>;
  insertDependency(parentId: number, childId: number): Awaitable<void>;
  statusOf(id: number): Awaitable<string | undefined>;
  stateOf(id: number): Awaitable<{ status: string; type: string; attempts: number; workflow_id: number | null; invoke_id: string | null } | undefined>;
  getPromiseRunAt(id: number): Awaitable<number | undefined>;
  /** Moves up to `limit` due `pending` rows to `in_progress` under a new lease; returns them best first (priority, then run-at, then id). */
  claimDue(request: ClaimRequest): Awaitable<ClaimedRow[]>;
  /** Applies a state change; false when the row moved on (or its lease was taken over) meanwhile. */
  updateState(update: StateUpdate): Awaitable<boolean>;
  /** Moves `waiting` children of `parentId` whose parents have all completed. */
  releaseReadyChildren(update: RelativesUpdate): Awaitable<RowRef[]>;
  /** Moves every `waiting` descendant of `parentId`, transitively. */
  failWaitingDescendants(update: RelativesUpdate): Awaitable<RowRef[]>;
  /** Moves every descendant of `parentId` that failed with `DEPENDENCY_FAILED` (attempts reset). */
  reviveFailedDescendants(update: RelativesUpdate): Awaitable<RowRef[]>;
  parentStatesOf(id: number): Awaitable<Array<{ id: number; status: string }>>;
  /** Moves every `waiting` row whose parents have all completed (used when resuming). */
  releaseAllReadyWaiting(update: Omit<RelativesUpdate, 'parentId'>): Awaitable<RowRef[]>;
  /** `waiting` rows with at least one `failed` parent (used when resuming). */
  waitingWithFailedParent(): Awaitable<RowRef[]>;
  expiredLeases(now: number, limit: number): Awaitable<ExpiredLease[]>;
  /** Running claims held by `owner` (used to recover a dead process's claims at once). */
  leasesOwnedBy(owner: string): Awaitable<ExpiredLease[]>;
  /** Extends the leases of `owner`'s running claims; returns the ids (with tokens) still held. */
  renewLeases(owner: string, leaseExpiresAt: number, now: number): Awaitable<Array<{ id: number; lease_token: number }>>;
  /** Records progress of a claim (fenced by its token); false when the claim is gone. */
  saveProgress(id: number, leaseToken: number, current: number, total: number, now: number): Awaitable<boolean>;
  /** Rewrites a row's snapshot, if the row is still in `status` (repairs a damaged snapshot). */
  repairSnapshot(id: number, status: string, snapshot: string): Awaitable<void>;
  /** Replaces a row's payload (JSON text). */
  setPayload(id: number, payload: string, now: number): Awaitable<void>;
  insertHistory(entry: HistoryEntry): Awaitable<void>;
  /** Copies the promise, as it failed, into the dead letters. */
  insertDeadLetter(id: number, errorCode: string, errorMessage: string, failedAt: number): Awaitable<void>;
  deleteDeadLettersOf(id: number): Awaitable<void>;
  clearDeadLetters(): Awaitable<number>;
  /** Deletes up to `limit` finished rows whose expiry passed (their edges and history go with them). */
  deleteExpired(now: number, limit: number): Awaitable<number>;
  /** Deletes up to `limit` rows finished at or before `cutoff`. */
  deleteFinishedBefore(cutoff: number, limit: number): Awaitable<number>;
  upsertSchedule(name: string, cron: string, timezone: string | null, now: number): Awaitable<void>;
  getSchedule(name: string): Awaitable<ScheduleRow | undefined>;
  /** Moves a schedule's last due time forward to `dueAt`; false if another process already did. */
  advanceSchedule(name: string, dueAt: number, now: number): Awaitable<boolean>;
  /** Pending rows of `types` that never ran and fell due before `cutoff`. */
  stalePending(types: readonly string[], cutoff: number): Awaitable<ExpiredLease[]>;
  /** Inserts a workflow; `undefined` when its idempotency key is taken (by a commit of another transaction, too). */
  insertWorkflow(row: NewWorkflow): Awaitable<number | undefined>;
  /** The workflow started with this idempotency key. */
  workflowByKey(key: string): Awaitable<{ id: number; name: string } | undefined>;
  getWorkflow(id: number): Awaitable<WorkflowRow | undefined>;
  saveWorkflow(update: WorkflowUpdate): Awaitable<void>;
  /** Sets the machine version of a migrated workflow. */
  setWorkflowVersion(id: number, version: string): Awaitable<void>;
  /** Moves the step promises of invocation `from` of a workflow to invocation `to`. */
  reassignStepInvocation(workflowId: number, from: string, to: string, now: number): Awaitable<void>;
  /** Marks a workflow as compensating a cancel. */
  markCancelRequested(id: number, now: number): Awaitable<void>;
  /** Rewrites the event types a workflow's current state has transitions for (none: it waits for nothing, or it ended). */
  setAwaiting(workflowId: number, eventTypes: readonly string[]): Awaitable<void>;
  /** Appends one transition to a workflow's history. */
  insertWorkflowTransition(row: WorkflowHistoryRow): Awaitable<void>;
  /** One transition of a workflow's history, with its snapshot. */
  workflowTransition(workflowId: number, seq: number): Awaitable<WorkflowHistoryRow | undefined>;
  /** Sets (a time) or clears (`null`) when a workflow was paused. */
  setWorkflowPaused(id: number, pausedAt: number | null, now: number): Awaitable<void>;
  /** Holds a workflow's pending steps and timers: their due times move `offset` ms ahead (once). */
  holdWorkflowWork(workflowId: number, offset: number, now: number): Awaitable<void>;
  /** Takes the offset of {@link StoreTransaction.holdWorkflowWork} back off. */
  releaseWorkflowWork(workflowId: number, offset: number, now: number): Awaitable<void>;
  insertWorkflowEvent(event: NewWorkflowEvent): Awaitable<number>;
  markWorkflowEventApplied(id: number, now: number): Awaitable<void>;
  /** Kept events not applied, discarded or lapsed at `now`, oldest first. */
  keptWorkflowEvents(workflowId: number, now: number): Awaitable<KeptEventRow[]>;
  /** The event sent to the workflow earlier with this key. */
  workflowEventByKey(workflowId: number, key: string): Awaitable<{ id: number; outcome: string | null; expires_at: number | null } | undefined>;
  /** When an event of this type was last applied to the workflow, if ever. */
  lastAppliedEventAt(workflowId: number, type: string): Awaitable<number | undefined>;
  /** Discards a kept event; false when it is not kept (applied, discarded already, or never kept). */
  discardWorkflowEvent(workflowId: number, id: number, reason: string, now: number): Awaitable<boolean>;
  /** Discards every kept event of a workflow. */
  discardKeptEvents(workflowId: number, reason: string, now: number): Awaitable<void>;
  /** The timers set for a workflow, earliest first. */
  timersOf(workflowId: number): Awaitable<WorkflowTimerRow[]>;
  upsertWorkflowTimer(timer: { workflowId: number; timerId: string; event: string; fireAt: number; now: number }): Awaitable<void>;
  /** False when the timer was already gone (fired by another process, or cancelled). */
  deleteWorkflowTimer(workflowId: number, timerId: string): Awaitable<boolean>;
  workflowOfParentStep(stepId: number): Awaitable<number | undefined>;
  /** The newest step promise of one invocation of a workflow. */
  latestStepOf(workflowId: number, invokeId: string): Awaitable<number | undefined>;
  deleteWorkflowTimers(workflowId: number): Awaitable<void>;
  dueWorkflowTimers(now: number, limit: number): Awaitable<WorkflowTimerRow[]>;
  /** Step promises of a workflow, oldest first. */
  stepsOf(workflowId: number): Awaitable<PromiseRow[]>;
}

/** An event sent to a workflow, as stored with the outcome its sender is told. */
export interface NewWorkflowEvent {
  workflowId: number;
  event: string;
  type: string;
  key: string | null;
  outcome: 'accepted' | 'kept' | 'dropped';
  appliedAt: number | null;
  expiresAt: number | null;
  now: number;
}

/** A kept event as read back. */
export interface KeptEventRow {
  id: number;
  event: string;
  type: string | null;
  created_at: number;
  expires_at: number | null;
}

export interface NewWorkflow {
  name: string;
  input: string;
  snapshot: string;
  version: string;
  parentStepId: number | null;
  /** An idempotency key (unique), or none. */
  key?: string | null;
  /** Set for a workflow started from another's history. */
  restartedFrom?: number | null;
  restartedFromSeq?: number | null;
  /** The trace context it starts in, as JSON text; null (or absent): not traced. */
  traceContext?: string | null;
  now: number;
}

export interface WorkflowUpdate {
  id: number;
  status: string;
  snapshot: string;
  output: string | null;
  errorCode: string | null;
  errorMessage: string | null;
  completedAt: number | null;
  /** The seq of the transition this update writes. */
  seq: number;
  now: number;
}

/** Storage of promises, the same over every dialect. Knows SQL; knows nothing of XState or handlers. */
export interface Store {
  /** Runs `work` in one write transaction (serialised; retried on transient lock errors). */
  transaction<T>(work: (tx: StoreTransaction) => Promise<T>): Promise<T>;
  getPromise(id: number): Awaitable<PromiseRow | undefined>;
  /** The parents of `id` (the promises it waits for), by id. */
  dependenciesOf(id: number): Awaitable<number[]>;
  /** The parents of each of `ids`, by id, in one query; an id without parents maps to `[]`. */
  dependenciesOfMany(ids: number[]): Awaitable<Map<number, number[]>>;
  /** The parents of `id` with their stored results (JSON text, `null` when none), in one query. */
  parentResultsOf(id: number): Awaitable<Array<{ id: number; result: string | null }>>;
  /** The dependents of `id` (the promises that wait for it), by id. */
  childrenOf(id: number): Awaitable<number[]>;
  /** Promises, newest first. */
  listPromises(filter: PromiseFilter): Awaitable<PromiseRow[]>;
  /** One page of the promise list by keyset (see statements/promise-pages.ts). */
  pageOfPromises(query: PromisePageQuery): Awaitable<PromiseRow[]>;
  /** The largest promise id, or null when there is none. */
  newestPromiseId(): Awaitable<number | null>;
  /** Earliest time a `pending` row of one of `types` falls due, if any. */
  nextRunAt(types: readonly string[], after: number): Awaitable<number | null>;
  /** Earliest expiry of any running claim's lease, if any. */
  nextLeaseExpiry(): Awaitable<number | null>;
  /** Earliest start deadline of a pending promise of `types`, if any. */
  nextStartBy(types: readonly string[]): Awaitable<number | null>;
  /** Streams `(id, status, snapshot, lease_owner)` of every unfinished row, for resuming. */
  unfinished(): Iterable<{ id: number; status: string; snapshot: string; lease_owner: string | null }> | AsyncIterable<{ id: number; status: string; snapshot: string; lease_owner: string | null }>;
  historyOf(id: number): Awaitable<HistoryRow[]>;
  getWorkflow(id: number): Awaitable<WorkflowRow | undefined>;
  stepsOf(workflowId: number): Awaitable<PromiseRow[]>;
  /** Every periodic schedule's row, by name. */
  listSchedules(): Awaitable<ScheduleRow[]>;
  /** Each (type, concurrency key) with work pending or running, and how much of each. */
  keysWithWork(limit: number): Awaitable<Array<{ type: string; key: string; running: number; pending: number }>>;
  /** Task types paused with `engine.pause(type)`, and since when. */
  pausedTypes(): Awaitable<Array<{ type: string; paused_at: number }>>;
  runningWorkflows(): Awaitable<Array<{ id: number; name: string; version: string }>>;
  /** Workflows, newest first. */
  listWorkflows(filter: { status?: string; name?: string; limit: number }): Awaitable<WorkflowRow[]>;
  /** Running workflows whose current state has a transition for one of `types` (an event type and the wildcards that match it), newest first. */
  listAwaitingWorkflows(filter: { types: readonly string[]; name?: string; limit: number }): Awaitable<WorkflowRow[]>;
  nextWorkflowTimerAt(): Awaitable<number | null>;
  /** Kept events of a workflow not applied, discarded or lapsed at `now`, oldest first. */
  keptWorkflowEvents(workflowId: number, now: number): Awaitable<KeptEventRow[]>;
  /** The timers set for a workflow, earliest first (what a migration's dry run reads). */
  timersOf(workflowId: number): Awaitable<WorkflowTimerRow[]>;
  /** A workflow's transitions, in order, without their snapshots. */
  /** One transition of a workflow, with the snapshot after it. */
  workflowTransitionAt(workflowId: number, seq: number): Awaitable<WorkflowHistoryRow | undefined>;
  workflowTransitions(workflowId: number): Awaitable<Array<Omit<WorkflowHistoryRow, 'workflow_id' | 'snapshot' | 'version' | 'timers'>>>;
  listDeadLetters(limit: number): Awaitable<DeadLetterRow[]>;
  countDeadLetters(): Awaitable<number>;
  countByStatusAndType(): Awaitable<Array<{ status: string; type: string; count: number }>>;
  /** Earliest run-at of a pending row already due at `now`. */
  oldestDueRunAt(now: number): Awaitable<number | null>;
  /** Rows finished after `since`, by status. */
  countFinishedSince(since: number): Awaitable<Record<string, number>>;
  /**
   * Starts what a long-running engine needs beside its transactions (SQLite: WAL checkpoints on
   * a background thread, off the commit path). Short-lived users (a CLI enqueue) skip it.
   */
  startMaintenance(): Promise<void>;
  /** Calls `listener` when another process changed the database. Returns an unsubscribe function. */
  onExternalChange(listener: () => void): () => void;
  close(): Promise<void>;
}
