import type { Generated, Selectable } from 'kysely';

/**
 * The tables, as Kysely sees them. Times are milliseconds since the epoch (integers), JSON is
 * stored as text, and the machine snapshot is opaque JSON text: this layer knows nothing of XState.
 */
export interface Database {
  promises: PromisesTable;
  promise_dependencies: PromiseDependenciesTable;
  promise_history: PromiseHistoryTable;
  dead_letters: DeadLettersTable;
  schedules: SchedulesTable;
  workflows: WorkflowsTable;
  workflow_events: WorkflowEventsTable;
  workflow_timers: WorkflowTimersTable;
  flow_keys: FlowKeysTable;
  rate_starts: RateStartsTable;
  paused_types: PausedTypesTable;
  workflow_history: WorkflowHistoryTable;
  workflow_awaiting: WorkflowAwaitingTable;
}

/** One row per (type, key) a concurrency or rate limit applies to. */
export interface FlowKeysTable {
  type: string;
  key: string;
  /** When this key last started a promise: the least recently served key is claimed first. */
  last_started_at: Generated<number>;
}

/** The starts of the last period per rate key (older ones are pruned as new ones are written). */
export interface RateStartsTable {
  id: Generated<number>;
  type: string;
  key: string;
  at: number;
}

/** Task types no process claims until resumed. */
export interface PausedTypesTable {
  type: string;
  paused_at: number;
}

/** An event type a running workflow's current state has a transition for. */
export interface WorkflowAwaitingTable {
  event_type: string;
  workflow_id: number;
}

/** One transition of a workflow: the event, the state values around it and the snapshot after it. */
export interface WorkflowHistoryTable {
  workflow_id: number;
  /** 1 for the first transition (the start), then one more per transition. */
  seq: number;
  /** The event's type. */
  event: string;
  /** The state value before (JSON), null for the start. */
  from_value: string | null;
  to_value: string;
  /** The workflow's status after it. */
  status: string;
  snapshot: string;
  /** The machine version that wrote the snapshot. */
  version: string;
  /** The timers set after it, as JSON `[{ timerId, event, delay }]` (delay left, ms). */
  timers: string;
  at: number;
}

export type WorkflowHistoryRow = Selectable<WorkflowHistoryTable>;

export interface WorkflowsTable {
  id: Generated<number>;
  name: string;
  /** `running`, `completed` or `failed`. */
  status: string;
  input: string;
  /** The persisted XState snapshot, as JSON text. */
  snapshot: string;
  version: string;
  output: string | null;
  error_code: string | null;
  error_message: string | null;
  /** The step promise that runs this workflow as a child of another, if any. */
  parent_step_id: number | null;
  /** The idempotency key it was started with (unique), if any. */
  key: string | null;
  /** When a cancel was asked for that the machine compensates; it fails with CANCELLED when it ends. */
  cancel_requested_at: number | null;
  /** When the workflow was paused; null while not paused. */
  paused_at: number | null;
  /** Its last transition's seq in workflow_history. */
  seq: Generated<number>;
  /** The workflow (and transition) it was restarted from, if any. */
  restarted_from: number | null;
  restarted_from_seq: number | null;
  /** The trace context it was started in (a propagator's carrier, as JSON); null: not traced. */
  trace_context: string | null;
  created_at: number;
  updated_at: number;
  completed_at: number | null;
}

export interface WorkflowEventsTable {
  id: Generated<number>;
  workflow_id: number;
  event: string;
  /** The event's type (null on rows older than the column). */
  type: string | null;
  /** The sender's idempotency key, unique per workflow. */
  key: string | null;
  /** What the sender was told: `accepted`, `kept` or `dropped`. */
  outcome: string | null;
  created_at: number;
  applied_at: number | null;
  /** A kept event lapses then. */
  expires_at: number | null;
  discarded_at: number | null;
  /** Why a kept event was discarded: `discarded` (asked), `unreachable`, `cancelled`. */
  discard_reason: string | null;
}

export interface WorkflowTimersTable {
  workflow_id: number;
  timer_id: string;
  event: string;
  fire_at: number;
  /** When it was set (null on rows older than the column). */
  created_at: number | null;
}

export type WorkflowEventRow = Selectable<WorkflowEventsTable>;

export type WorkflowRow = Selectable<WorkflowsTable>;

export type WorkflowTimerRow = WorkflowTimersTable;

export interface PromiseHistoryTable {
  id: Generated<number>;
  promise_id: number;
  event: string;
  from_status: string;
  to_status: string;
  attempt: number;
  error_code: string | null;
  error_message: string | null;
  at: number;
}

export interface DeadLettersTable {
  id: Generated<number>;
  promise_id: number;
  type: string;
  payload: string;
  error_code: string;
  error_message: string;
  attempts: number;
  created_at: number;
  failed_at: number;
}

export interface SchedulesTable {
  name: string;
  cron: string;
  timezone: string | null;
  last_due_at: number | null;
  updated_at: number;
}

export interface PromisesTable {
  id: Generated<number>;
  type: string;
  status: string;
  /** Higher runs first. */
  priority: number;
  payload: string;
  result: string | null;
  error_code: string | null;
  error_message: string | null;
  /** Attempts started so far (a claim counts one). */
  attempts: Generated<number>;
  max_attempts: number;
  /** Earliest time a `pending` promise may be claimed. */
  run_at: number;
  lease_owner: string | null;
  lease_expires_at: number | null;
  /** Fencing token: bumped by every claim and every takeover; a completion must present it. */
  lease_token: Generated<number>;
  progress_current: number | null;
  progress_total: number | null;
  snapshot: string;
  idempotency_key: string | null;
  created_at: number;
  updated_at: number;
  started_at: number | null;
  completed_at: number | null;
  /** When a finished promise (and its result) may be removed by cleanup; null: kept. */
  expires_at: number | null;
  /** Set when this promise is a step of a workflow: the workflow and the invocation it runs. */
  workflow_id: number | null;
  invoke_id: string | null;
  /** Leases lost while running it (its worker died or froze). */
  lease_losses: Generated<number>;
  /** The key its task's concurrency limit counts it under; null: no per-key limit. */
  flow_key: string | null;
  /** The key its task's rate limit counts it under; null: no keyed rate limit. */
  rate_key: string | null;
  /** The trace context it was enqueued in (a propagator's carrier, as JSON); null: not traced. */
  trace_context: string | null;
  /** Its task's `expireIn`, ms: how long it may wait, once runnable, for its first start. */
  expire_in: number | null;
  /** While pending and never started: the time after which it fails with EXPIRED instead of starting. */
  start_by: number | null;
  /** Its task's `keyTtl`, ms: how long its idempotency key is remembered after it settles; null: while the row lives. */
  key_ttl: number | null;
  /** Its debounce key: enqueues of the same type and key collapse into it while it is pending and not started. */
  debounce_key: string | null;
}

/** One row per edge: `child_id` waits for `parent_id`. Indexed both ways. */
export interface PromiseDependenciesTable {
  parent_id: number;
  child_id: number;
}

/** A row of `promises` as read back. */
export type PromiseRow = Selectable<PromisesTable>;
