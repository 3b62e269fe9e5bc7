import type { TaskOptions } from '../kernel/options.js';
import type { PromiseRecord } from '../kernel/records.js';
import type { TaskHandler } from '../kernel/task-context.js';

/** A step: a handler `(input, ctx) => output`, or `{ workflow: name }` to run another workflow as a child. */
export type WorkflowStep = TaskHandler | { workflow: string };

/** Options for {@link Engine.workflow}. */
export interface WorkflowOptions {
  /** One entry per actor the machine invokes, by its name in `setup({ actors })`. */
  steps: Record<string, WorkflowStep>;
  /** Task options (retries, timeout…) for every step, or per step name. */
  stepOptions?: TaskOptions | Record<string, TaskOptions>;
  /**
   * How long an event the current state does not accept may be kept for a later state, in ms
   * (`0`: never kept). See the event rule in docs/workflows.md.
   * @defaultValue `{ ttl: 60_000 }`
   */
  keptEvents?: { ttl?: number; byType?: Record<string, number> };
  /**
   * How long (ms) a cancelled workflow whose state handles `promised.cancel` may compensate
   * before it is ended as if it had not handled it.
   * @defaultValue `600_000` (10 minutes)
   */
  compensationTimeout?: number;
  /**
   * How running workflows written by another version of the machine are moved onto this one,
   * when the engine starts (or before their next event). Without it, a stored snapshot that no
   * longer fits fails with `WORKFLOW_VERSION_MISMATCH`. See docs/workflows.md.
   */
  migrate?: WorkflowMigration;
}

/**
 * A declarative migration from older versions of a workflow's machine.
 *
 * @example
 * ```ts
 * const migrate: WorkflowMigration = {
 *   states: { cooldown: 'approval', 'build.code': 'checking' },          // old state path → new state path
 *   context: (old) => ({ ...(old as object), reviewers: [] }),          // the context, upgraded
 * };
 * ```
 */
export interface WorkflowMigration {
  /**
   * Old state paths (dotted from the root, e.g. `build.code.setup`, or a parent such as `build`)
   * to states of the new machine. Each active state is renamed by the longest entry that is it or
   * a parent of it; a state without an entry keeps its path. A mapped state starts at its initial
   * substate.
   */
  states?: Record<string, string>;
  /** Upgrades the stored context; throwing fails the workflow with `WORKFLOW_VERSION_MISMATCH`. */
  context?: (context: unknown, from: { value: unknown; version: string }) => unknown;
  /** Only workflows written by these machine versions (`getWorkflow(id).version`); by default every other version. */
  from?: string[];
}

/**
 * What `start()` would do to one running workflow with the machines registered now, as
 * `previewWorkflowMigrations` (and `promised workflows migrate --dry-run`) shows it.
 */
export interface MigrationPreview {
  id: string;
  name: string;
  /**
   * `migrate`: moved onto the registered machine by its `migrate` map; `fail`: it would fail with
   * `WORKFLOW_VERSION_MISMATCH` (see `error`); `resume`: written by another version that the
   * registered machine resumes as it is; `current`: written by the registered version;
   * `unregistered`: no machine of its name is registered (it is left as it is).
   */
  outcome: 'migrate' | 'fail' | 'resume' | 'current' | 'unregistered';
  /** The machine version that wrote its snapshot, and the registered one (`null`: unregistered). */
  fromVersion: string;
  toVersion: string | null;
  /** Its state value now, and the one it would have (`null` when it fails or is not registered). */
  from: unknown;
  to: unknown;
  /** Whether the `migrate.context` upgrade ran and returned (`upgraded`), threw or gave what cannot be stored (`error`), or there is none (`unchanged`). */
  context: 'upgraded' | 'unchanged' | 'error';
  /** Why it would fail: the stage (`states`, `context`, `steps`, `timers`) and the message it would fail with. */
  error: { code: 'WORKFLOW_VERSION_MISMATCH'; stage: 'states' | 'context' | 'steps' | 'timers'; message: string } | null;
  /** Running steps handed to a new invocation, new steps started, old invocations cancelled. */
  steps: { handedOver: Array<{ from: string; to: string }>; started: Array<{ invokeId: string; step: string }>; cancelled: string[] };
  /** `after` timers dropped (their state is left) and set (a new state's, with its delay in ms). */
  timers: { dropped: string[]; set: Array<{ id: string; delay: number }> };
}

/** What `cancelWorkflow` did: ended the workflow (`cancelled`), or handed it `promised.cancel` to compensate (`compensating`). */
export interface CancelResult {
  outcome: 'cancelled' | 'compensating';
}

/** Options of `engine.send`. */
export interface WorkflowSendOptions {
  /**
   * An idempotency key (at most 512 characters, unique per workflow): a send repeated with it is
   * the same event, answered with the first send's outcome, and writes nothing.
   */
  key?: string;
}

/**
 * What became of a sent event: `accepted` (the current state handles it: applied), `kept` (held
 * for a state the workflow is moving towards on its own, until `expiresAt`) or `dropped`.
 */
export interface SendResult {
  outcome: 'accepted' | 'kept' | 'dropped';
  /** The stored event's id (for `discardEvent`). */
  eventId: string;
  /** When a kept event lapses; `null` otherwise. */
  expiresAt: Date | null;
}

/** An event kept for a later state, as `getWorkflow` lists it. */
export interface KeptEvent {
  id: string;
  event: WorkflowEvent;
  keptAt: Date;
  expiresAt: Date;
}

/** Options of `engine.startWorkflow`. */
export interface WorkflowStartOptions {
  /**
   * An idempotency key (at most 512 characters): a start with a key already used returns that
   * workflow's id and writes nothing, so a retried request starts one workflow, not two.
   */
  key?: string;
}

/** @internal What the runtime's start takes: the public options, validated, and the parent step of a child workflow. */
export interface StartOptions {
  key?: string;
  parentStepId?: number;
}

/** An external event: a `type`, and any JSON fields. */
export type WorkflowEvent = { type: string } & Record<string, unknown>;

/** A workflow as `getWorkflow` shows it. */
export interface WorkflowRecord {
  id: string;
  name: string;
  status: 'running' | 'completed' | 'failed';
  /** The machine's state value. */
  value: unknown;
  context: unknown;
  output: unknown;
  error: { code: string; message: string } | null;
  /** The idempotency key it was started with, or `null`. */
  key: string | null;
  /** The fingerprint of the machine version that wrote its snapshot. */
  version: string;
  steps: PromiseRecord[];
  /** Events kept for a later state, oldest first (empty once the workflow finished). */
  keptEvents: KeptEvent[];
  /** When a cancel was asked for that the workflow is compensating (it then fails with `CANCELLED`), or `null`. */
  cancelRequestedAt: Date | null;
  /** When it was paused, or `null` while not paused. */
  pausedAt: Date | null;
  /** The workflow and transition it was restarted from (`restartWorkflow`), or `null`. */
  restartedFrom: { id: string; seq: number } | null;
  createdAt: Date;
  completedAt: Date | null;
}

/** One transition of a workflow, as `workflowHistory` lists it. */
export interface WorkflowTransition {
  /** 1 for the start, then one more per transition. */
  seq: number;
  /** The event's type (`xstate.init` for the start, `promised.cancel`, `promised.restart`…). */
  event: string;
  /** The state value before it (`null` for the first line). */
  from: unknown;
  /** The state value after it. */
  to: unknown;
  /** The workflow's status after it. */
  status: 'running' | 'completed' | 'failed';
  at: Date;
}

/** Options of `engine.restartWorkflow`. */
export interface RestartOptions {
  /** The transition whose stored snapshot the new workflow starts from (a `seq` of `workflowHistory`). */
  fromSeq: number;
  /** An idempotency key for the new workflow, as for `startWorkflow`. */
  key?: string;
}

/** A workflow as `listWorkflows` shows it: without its steps and kept events. */
export type WorkflowSummary = Omit<WorkflowRecord, 'steps' | 'keptEvents'>;

/** A workflow moved: the event applied and the state it led to. */
export type WorkflowChange = Pick<WorkflowRecord, 'id' | 'name' | 'status' | 'value' | 'context' | 'output' | 'error'> & { event: string; at: Date };

/** Where a workflow's changes go once committed (the engine's `workflow` event). */
export interface WorkflowListeners {
  /** True when someone listens (building a change costs a parse of the snapshot). */
  wanted(): boolean;
  emit(change: WorkflowChange): void;
}

/** The workflow statuses, as stored. */
export const WORKFLOW_STATUSES = ['running', 'completed', 'failed'] as const;
