import type { EventObject } from 'xstate';
import { CancelledError } from '../errors.js';
import { toJsonText } from '../json.js';
import { applyWorkflowEvent, snapshotMismatch, type MachineStep, type PersistedWorkflowSnapshot } from '../machines/workflow-machine.js';
import type { WorkflowRow } from '../persistence/schema.js';
import type { KernelPort } from '../kernel/port.js';
import type { ResultWaiters } from '../kernel/result-waiters.js';
import type { ErrorRecord } from '../kernel/transition-types.js';
import type { UnitOfWork } from '../kernel/unit-of-work.js';
import { awaitedEventTypes } from './event-reachability.js';
import { stepType } from './step-types.js';
import { migratesFrom, refuseUnmanagedActors, serialiseSnapshot, type Definition } from './workflow-definitions.js';
import { planMigration, type MigrationPlan } from './migration-plan.js';
import { MIGRATE_EVENT } from './workflow-migration.js';
import { WorkflowError } from './workflow-errors.js';
import { noteTransition, traceTransition } from './workflow-tracing.js';
import type { WorkflowListeners, WorkflowRecord } from './workflow-types.js';

export type Finished = { status: 'completed'; output: unknown } | { status: 'failed'; error: ErrorRecord };

/**
 * How far ahead a paused workflow's pending steps and timers are moved: past any real time (year
 * 33,700), so nothing claims or fires them, and still a valid `Date`. Resuming takes it back off.
 */
export const HOLD_OFFSET = 1e15;

/** A timer as a history line keeps it: the delay that was left. */
export interface TimerLeft {
  timerId: string;
  event: EventObject;
  delay: number;
}

/** A workflow as the driver names it in what it writes: the version is that of the snapshot written. */
export interface WorkflowRef {
  id: number;
  name: string;
  version: string;
}

/**
 * Moves workflows: applies one event to a stored snapshot with the pure `transition()` and
 * writes, in the caller's unit of work, everything the transition asked for (the snapshot, new
 * step promises, cancelled steps, stored timers) or how the workflow ended. After each move the
 * `moved` hook runs in the same unit (the kept events are offered there).
 */
export class WorkflowDriver {
  readonly #port: KernelPort;
  readonly #definitions: ReadonlyMap<string, Definition>;
  readonly #listeners: WorkflowListeners;
  readonly #waiters: ResultWaiters;
  /** Runs after every move of a still running workflow, in its unit of work. */
  moved: (uow: UnitOfWork, workflowId: number) => Promise<void> = () => Promise.resolve();
  /** Runs for every step promise cancelled, in the cancelling unit of work (a child workflow it runs is cancelled there). */
  stepCancelled: (uow: UnitOfWork, stepId: number) => Promise<void> = () => Promise.resolve();

  constructor(port: KernelPort, definitions: ReadonlyMap<string, Definition>, listeners: WorkflowListeners, waiters: ResultWaiters) {
    this.#port = port;
    this.#definitions = definitions;
    this.#listeners = listeners;
    this.#waiters = waiters;
  }

  /** The registered definition of a stored workflow; throws when this process has not registered its name. */
  definitionOf(row: WorkflowRow): Definition {
    const definition = this.#definitions.get(row.name);
    if (!definition) throw new WorkflowError('UNKNOWN_WORKFLOW', `workflow ${row.id} runs "${row.name}", which this process has not registered`);
    return definition;
  }

  /**
   * Applies `event` to the stored workflow. With `refuseBadContext` (an external event), a
   * transition that cannot be stored throws (and the caller's transaction writes nothing);
   * otherwise the workflow fails, its last good snapshot kept.
   */
  apply(uow: UnitOfWork, stored: WorkflowRow, received: EventObject, options: { refuseBadContext: boolean }): Promise<void> {
    return traceTransition(stored, received.type, () => this.#apply(uow, stored, received, options));
  }

  async #apply(uow: UnitOfWork, stored: WorkflowRow, received: EventObject, options: { refuseBadContext: boolean }): Promise<void> {
    const definition = this.definitionOf(stored);
    let row = stored;
    let event = received;
    if (migratesFrom(definition, stored.version)) {
      const migrated = await this.migrate(uow, stored, definition);
      if (!migrated) return;
      row = migrated.row;
      // The outcome of a step handed to a new invocation (it settled before the start migrated it) speaks for that invocation.
      event = renamedStepEvent(received, migrated.transferred);
    }
    const persisted = JSON.parse(row.snapshot) as PersistedWorkflowSnapshot;
    const mismatch = row.version === definition.version ? null : snapshotMismatch(definition.machine, persisted);
    if (mismatch) return this.failVersion(uow, row, mismatch);
    let step: MachineStep;
    try {
      step = applyWorkflowEvent(definition.machine, persisted, event);
    } catch (error) {
      return this.failVersion(uow, row, (error as Error).message);
    }
    let snapshot: string;
    try {
      refuseUnmanagedActors(definition, step);
      snapshot = serialiseSnapshot(step);
    } catch (error) {
      if (options.refuseBadContext) throw error;
      // The last good snapshot is kept.
      const code = error instanceof WorkflowError ? error.code : 'INVALID_CONTEXT';
      return this.finish(uow, row, row.snapshot, { status: 'failed', error: { code, message: (error as Error).message } }, event.type, row);
    }
    return this.commitStep(uow, definition, row.id, step, snapshot, event.type, row);
  }

  /**
   * see it), and a line of its history. `from` is the stored workflow it moves from (`null` for
   * the start). A workflow compensating a cancel that ends, however, fails with CANCELLED; the
   * steps and timers a paused workflow starts are held (see {@link HOLD_OFFSET}).
   */
  commitStep(uow: UnitOfWork, definition: Definition, workflowId: number, step: MachineStep, snapshot: string, event: string, from: WorkflowRow | null): Promise<void> {
    const traced = { id: workflowId, name: definition.name, trace_context: from?.trace_context ?? null };
    return traceTransition(traced, event, () => this.#commitStep(uow, definition, workflowId, step, snapshot, event, from));
  }

  async #commitStep(uow: UnitOfWork, definition: Definition, workflowId: number, step: MachineStep, snapshot: string, event: string, from: WorkflowRow | null): Promise<void> {
    const workflow = { id: workflowId, name: definition.name, version: definition.version };
    const hold = from?.paused_at != null ? HOLD_OFFSET : 0;
    if (step.status !== 'active' && from?.cancel_requested_at != null) {
      const how = step.status === 'done' ? 'its compensation reached a final state' : `its compensation failed: ${describeError(step.error)}`;
      return this.finish(uow, workflow, snapshot, { status: 'failed', error: { code: 'CANCELLED', message: `workflow ${workflowId} was cancelled; ${how}` } }, event, from);
    }
    if (step.status === 'done') return this.finish(uow, workflow, snapshot, { status: 'completed', output: step.output ?? null }, event, from);
    if (step.status === 'error' || step.status === 'stopped') {
      return this.finish(uow, workflow, snapshot, { status: 'failed', error: { code: 'WORKFLOW_ERROR', message: describeError(step.error) } }, event, from);
    }
    const { tx, now } = uow;
    const seq = (from?.seq ?? 0) + 1;
    await tx.saveWorkflow({ id: workflowId, status: 'running', snapshot, output: null, errorCode: null, errorMessage: null, completedAt: null, seq, now });
    this.answerAfterCommit(uow, workflow, 'running', snapshot, null, null, event);
    for (const invokeId of step.stopped) await this.cancelSteps(uow, workflowId, invokeId);
    for (const timerId of step.cancelled) await tx.deleteWorkflowTimer(workflowId, timerId);
    for (const timer of step.scheduled) {
      await tx.upsertWorkflowTimer({ workflowId, timerId: timer.id, event: JSON.stringify(timer.event), fireAt: now + timer.delay + hold, now });
    }
    for (const started of step.started) {
      const spec = this.#port.specOf({ type: stepType(definition.name, started.src), payload: { input: started.input ?? null } }, `steps.${started.src}.input`);
      await this.#port.promises.create(uow, { ...spec, runAt: now + hold, workflowId, invokeId: started.invokeId });
    }
    await this.recordTransition(uow, workflow, seq, event, from, 'running', snapshot, await this.timersLeft(uow, workflowId));
    await this.moved(uow, workflowId);
  }

  /**
   * Moves a running workflow written by another machine version onto this one, by the
   * definition's `migrate` (see {@link migrateSnapshot}), in the caller's unit of work: its new
   * snapshot and version, steps handed over, cancelled or started, timers dropped or set, a
   * `promised.migrate` history line. Returns the migrated row, or `undefined` when it could not
   * be migrated (it then failed with `WORKFLOW_VERSION_MISMATCH`, its snapshot kept).
   */
  migrate(uow: UnitOfWork, row: WorkflowRow, definition: Definition): Promise<{ row: WorkflowRow; transferred: Array<[string, string]> } | undefined> {
    return traceTransition(row, MIGRATE_EVENT, () => this.#migrate(uow, row, definition));
  }

  async #migrate(uow: UnitOfWork, row: WorkflowRow, definition: Definition): Promise<{ row: WorkflowRow; transferred: Array<[string, string]> } | undefined> {
    const { tx, now } = uow;
    let plan: MigrationPlan;
    try {
      plan = planMigration(definition, row, await tx.timersOf(row.id));
    } catch (error) {
      await this.failVersion(uow, row, `it could not be migrated: ${(error as Error).message}`);
      return undefined;
    }
    const { migrated, snapshot } = plan;
    const seq = row.seq + 1;
    const workflow = { id: row.id, name: row.name, version: definition.version };
    await tx.saveWorkflow({ id: row.id, status: 'running', snapshot, output: null, errorCode: null, errorMessage: null, completedAt: null, seq, now });
    await tx.setWorkflowVersion(row.id, definition.version);
    for (const [from, to] of migrated.transferred) await tx.reassignStepInvocation(row.id, from, to, now);
    for (const invokeId of migrated.dropped) await this.cancelSteps(uow, row.id, invokeId);
    for (const timerId of migrated.cancelledTimers) await tx.deleteWorkflowTimer(row.id, timerId);
    const hold = row.paused_at !== null ? HOLD_OFFSET : 0;
    for (const timer of migrated.scheduled) await tx.upsertWorkflowTimer({ workflowId: row.id, timerId: timer.id, event: JSON.stringify(timer.event), fireAt: now + timer.delay + hold, now });
    for (const started of migrated.started) {
      const spec = this.#port.specOf({ type: stepType(row.name, started.src), payload: { input: started.input } }, `steps.${started.src}.input`);
      await this.#port.promises.create(uow, { ...spec, runAt: now + hold, workflowId: row.id, invokeId: started.invokeId });
    }
    await this.recordTransition(uow, workflow, seq, MIGRATE_EVENT, row, 'running', snapshot, await this.timersLeft(uow, row.id));
    this.answerAfterCommit(uow, workflow, 'running', snapshot, null, null, MIGRATE_EVENT);
    this.#port.log.info({ workflowId: row.id, workflow: row.name, from: row.version, to: definition.version, value: migrated.persisted.value }, 'workflow migrated to the new machine version');
    return { row: { ...row, snapshot, version: definition.version, seq }, transferred: migrated.transferred };
  }

  /** Ends the workflow with `snapshot`: its status, output or error, a line of its history; its timers dropped and its unfinished steps cancelled. */
  finish(uow: UnitOfWork, workflow: WorkflowRef, snapshot: string, finished: Finished, event: string, from: WorkflowRow | null): Promise<void> {
    const traced = { id: workflow.id, name: workflow.name, trace_context: from?.trace_context ?? null };
    return traceTransition(traced, event, () => this.#finish(uow, workflow, snapshot, finished, event, from));
  }

  async #finish(uow: UnitOfWork, workflow: WorkflowRef, snapshot: string, finished: Finished, event: string, from: WorkflowRow | null): Promise<void> {
    const output = finished.status === 'completed' ? finished.output : null;
    const error = finished.status === 'failed' ? finished.error : null;
    const seq = (from?.seq ?? 0) + 1;
    await this.recordTransition(uow, workflow, seq, event, from, finished.status, snapshot, []);
    await uow.tx.saveWorkflow({
      seq,
      id: workflow.id,
      status: finished.status,
      snapshot,
      output: output === null || output === undefined ? null : toJsonText(output, 'output'),
      errorCode: error?.code ?? null,
      errorMessage: error?.message ?? null,
      completedAt: uow.now,
      now: uow.now,
    });
    await uow.tx.deleteWorkflowTimers(workflow.id);
    this.answerAfterCommit(uow, workflow, finished.status, snapshot, output ?? null, error, event);
    await this.cancelSteps(uow, workflow.id, null);
  }

  /**
   * Appends a transition to the workflow's history (what `workflowHistory` reads and
   * `restartWorkflow` starts from) and rewrites what it now awaits (what `listWorkflows({ awaiting })` reads).
   */
  async recordTransition(uow: UnitOfWork, workflow: WorkflowRef, seq: number, event: string, from: WorkflowRow | null, status: string, snapshot: string, timers: TimerLeft[]): Promise<void> {
    const valueOf = (text: string) => JSON.stringify((JSON.parse(text) as PersistedWorkflowSnapshot).value ?? null);
    noteTransition(workflow.id, { seq, from: from === null ? null : valueOf(from.snapshot), to: valueOf(snapshot), status });
    await this.indexAwaiting(uow, { id: workflow.id, name: workflow.name, status, snapshot });
    await uow.tx.insertWorkflowTransition({
      workflow_id: workflow.id,
      seq,
      event,
      from_value: from === null ? null : valueOf(from.snapshot),
      to_value: valueOf(snapshot),
      status,
      snapshot,
      version: workflow.version,
      timers: JSON.stringify(timers),
      at: uow.now,
    });
  }

  /** Rewrites the event types a workflow's current state has transitions for (none once it ended). */
  async indexAwaiting(uow: UnitOfWork, workflow: Pick<WorkflowRow, 'id' | 'name' | 'status' | 'snapshot'>): Promise<void> {
    const machine = this.#definitions.get(workflow.name)?.machine;
    const awaited = workflow.status === 'running' && machine ? awaitedEventTypes(machine, (JSON.parse(workflow.snapshot) as PersistedWorkflowSnapshot).value) : [];
    await uow.tx.setAwaiting(workflow.id, awaited);
  }

  /** The machine's timers now set for a workflow, as delays left (a held timer's without the hold). The engine's own are left out. */
  async timersLeft(uow: UnitOfWork, workflowId: number): Promise<TimerLeft[]> {
    const timers: TimerLeft[] = [];
    for (const timer of await uow.tx.timersOf(workflowId)) {
      const event = JSON.parse(timer.event) as EventObject;
      if (event.type.startsWith('promised.')) continue;
      const fireAt = timer.fire_at >= HOLD_OFFSET ? timer.fire_at - HOLD_OFFSET : timer.fire_at;
      timers.push({ timerId: timer.timer_id, event, delay: Math.max(0, fireAt - uow.now) });
    }
    return timers;
  }

  /** Once the unit of work commits (never if it rolls back): wake the workflow's waiters and tell the listeners. */
  answerAfterCommit(
    uow: UnitOfWork,
    workflow: WorkflowRef,
    status: WorkflowRecord['status'],
    snapshot: string,
    output: unknown,
    error: ErrorRecord | null,
    event: string,
  ): void {
    const at = new Date(uow.now);
    uow.afterCommit(() => {
      void this.#waiters.settle(workflow.id);
      if (!this.#listeners.wanted()) return;
      const { value, context } = JSON.parse(snapshot) as PersistedWorkflowSnapshot;
      this.#listeners.emit({ id: String(workflow.id), name: workflow.name, status, value, context, output, error, event, at });
    });
  }

  failVersion(uow: UnitOfWork, row: WorkflowRow, reason: string): Promise<void> {
    this.#port.log.error({ workflowId: row.id, workflow: row.name, reason }, 'stored snapshot does not fit the machine');
    // The snapshot is kept exactly as stored, for inspection and migration.
    const error = { code: 'WORKFLOW_VERSION_MISMATCH', message: `the stored snapshot does not fit workflow "${row.name}" any more: ${reason}` };
    return this.finish(uow, row, row.snapshot, { status: 'failed', error }, 'xstate.error', row);
  }

  /**
   * Cancels the unfinished step promises of one invocation (or of all, when `invokeId` is null).
   * A handler running one in this process has its signal aborted once the cancel commits (other
   * processes notice the commit themselves); its late outcome is refused by the fencing token.
   */
  async cancelSteps(uow: UnitOfWork, workflowId: number, invokeId: string | null): Promise<void> {
    for (const step of await uow.tx.stepsOf(workflowId)) {
      if (invokeId !== null && step.invoke_id !== invokeId) continue;
      if (step.status === 'completed' || step.status === 'failed') continue;
      await this.#port.promises.cancel(uow, step.id);
      uow.afterCommit(() => this.#port.abortRunning(step.id, new CancelledError(String(step.id))));
      await this.stepCancelled(uow, step.id);
    }
  }
}

function renamedStepEvent(event: EventObject, transferred: Array<[string, string]>): EventObject {
  for (const [from, to] of transferred) {
    for (const prefix of ['xstate.done.actor.', 'xstate.error.actor.']) if (event.type === prefix + from) return { ...event, type: prefix + to };
  }
  return event;
}

function describeError(error: unknown): string {
  return error instanceof Error ? error.message : JSON.stringify(error ?? 'stopped');
}
