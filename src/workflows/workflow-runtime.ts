import type { AnyStateMachine, EventObject } from 'xstate';
import { InvalidOptionError, NotFoundError, PromisedError } from '../errors.js';
import { toJsonText } from '../json.js';
import {
  acceptsWorkflowEvent,
  applyWorkflowEvent,
  initialWorkflowStep,
  snapshotMismatch,
  type MachineStep,
  type PersistedWorkflowSnapshot,
} from '../machines/workflow-machine.js';
import type { WorkflowRow } from '../persistence/schema.js';
import type { KernelPort } from '../kernel/port.js';
import { parseId } from '../kernel/records.js';
import { ResultWaiters } from '../kernel/result-waiters.js';
import type { TaskContext, TaskHandler } from '../kernel/task-context.js';
import type { ErrorRecord, SettledPromise, StepRef } from '../kernel/transition-types.js';
import type { UnitOfWork } from '../kernel/unit-of-work.js';
import { stepType } from './step-types.js';
import { defineWorkflow, pickStepOptions, refuseUnmanagedActors, serialiseSnapshot, type Definition } from './workflow-definitions.js';
import { WorkflowError } from './workflow-errors.js';
import { listWorkflows, readWorkflow, settledOutput, type WorkflowFilter } from './workflow-reads.js';
import { WorkflowTimers } from './workflow-timers.js';
import type { StartOptions, WorkflowEvent, WorkflowListeners, WorkflowOptions, WorkflowRecord, WorkflowStep } from './workflow-types.js';

type Finished = { status: 'completed'; output: unknown } | { status: 'failed'; error: ErrorRecord };

/**
 * Durable workflows: a user's XState machine whose invoked actors are promises. Every
 * transition (start, a step's result, an external event, a due timer) is applied with the pure
 * `transition()` and committed in one unit of work together with everything it asked for: the
 * snapshot, new step promises, cancelled steps, stored timers. Built on the kernel's port only:
 * a step's settlement reaches its workflow through a settle hook, in the settling transaction.
 */
export class WorkflowRuntime {
  readonly #port: KernelPort;
  readonly #listeners: WorkflowListeners;
  readonly #definitions = new Map<string, Definition>();
  readonly #waiters: ResultWaiters;
  readonly #timers: WorkflowTimers;

  constructor(port: KernelPort, listeners: WorkflowListeners) {
    this.#port = port;
    this.#listeners = listeners;
    this.#waiters = new ResultWaiters((id) => settledOutput(port.store, id), () => undefined);
    this.#timers = new WorkflowTimers(port, (uow, row, event) => (this.#definitions.has(row.name) ? this.#apply(uow, row, event, { refuseBadContext: false }) : Promise.resolve()));
    port.onSettled((uow, settled) => this.#stepSettled(uow, settled));
    // Another process changed the database: any awaited workflow may have finished there.
    port.onExternalChange(() => {
      this.#waiters.settleAll();
      this.#timers.rearm();
    });
  }

  /** Registers a workflow; its steps become task types `workflow:<name>:<step>`. */
  define(name: string, machine: AnyStateMachine, options: WorkflowOptions): void {
    if (this.#definitions.has(name)) throw new WorkflowError('DUPLICATE_WORKFLOW', `workflow "${name}" is already registered`);
    const definition = defineWorkflow(name, machine, options);
    for (const [step, implementation] of Object.entries(options.steps)) {
      this.#port.registerTask(stepType(name, step), this.#stepHandler(implementation), pickStepOptions(options.stepOptions, step));
    }
    this.#definitions.set(name, definition);
  }

  #stepHandler(step: WorkflowStep): TaskHandler {
    if (typeof step === 'function') return (payload: { input: unknown }, ctx: TaskContext) => step(payload.input, ctx);
    if (step && typeof step === 'object' && typeof step.workflow === 'string') {
      const child = step.workflow;
      // The child is found again by its parent step on a re-run, so a crash never starts two.
      return async (payload: { input: unknown }, ctx: TaskContext) => {
        const id = await this.start(child, payload.input, { parentStepId: Number(ctx.id) });
        try {
          return await this.result(id, undefined);
        } catch (error) {
          // The engine is stopping while the child still runs: failing here would fail the
          // parent's step (and so the parent). Hold the attempt instead: the engine hands it
          // back after `stopTimeoutMs` without counting it, and after a restart the step runs
          // again and finds its child.
          if (!(error instanceof PromisedError && error.code === 'ENGINE_STOPPED') || ctx.signal.aborted) throw error;
          return new Promise((_resolve, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true }));
        }
      };
    }
    throw new InvalidOptionError('step', step, 'a function (input, ctx) => output, or { workflow: name }');
  }

  get names(): string[] {
    return [...this.#definitions.keys()];
  }

  machineOf(name: string): AnyStateMachine | undefined {
    return this.#definitions.get(name)?.machine;
  }

  #definition(name: string): Definition {
    const definition = this.#definitions.get(name);
    if (!definition) throw new WorkflowError('UNKNOWN_WORKFLOW', `unknown workflow "${name}"; register it with engine.workflow("${name}", machine, { steps })`);
    return definition;
  }

  /**
   * Starts a workflow; returns its id once its first state and first steps are on disk. With a
   * `key`, a workflow already started with it is returned instead and nothing is written.
   */
  async start(name: string, input: unknown, options: StartOptions = {}): Promise<string> {
    const definition = this.#definition(name);
    const key = options.key ?? null;
    const parentStepId = options.parentStepId ?? null;
    const inputText = toJsonText(input, 'input');
    const id = await this.#port.write(async (uow) => {
      if (parentStepId !== null) {
        const existing = await uow.tx.workflowOfParentStep(parentStepId);
        if (existing !== undefined) return existing;
      }
      if (key !== null) {
        const existing = await this.#byKey(uow, name, key);
        if (existing !== undefined) return existing;
      }
      const step = initialWorkflowStep(definition.machine, JSON.parse(inputText));
      refuseUnmanagedActors(definition, step);
      const snapshot = serialiseSnapshot(step);
      const workflowId = await uow.tx.insertWorkflow({ name, input: inputText, snapshot, version: definition.version, parentStepId, key, now: uow.now });
      // Another transaction took the key first (PostgreSQL); it committed, so its workflow is the one.
      if (workflowId === undefined) return (await this.#byKey(uow, name, key!))!;
      await this.#commitStep(uow, definition, workflowId, step, snapshot, 'xstate.init');
      return workflowId;
    });
    this.#timers.rearm();
    return String(id);
  }

  /** The workflow started with `key`; refused when that workflow is of another name (a key names one workflow). */
  async #byKey(uow: UnitOfWork, name: string, key: string): Promise<number | undefined> {
    const existing = await uow.tx.workflowByKey(key);
    if (existing && existing.name !== name) {
      throw new WorkflowError('WORKFLOW_KEY_CONFLICT', `key ${JSON.stringify(key)} already started workflow ${existing.id}, a "${existing.name}", not a "${name}"`);
    }
    return existing?.id;
  }

  /**
   * Stores an external event, then applies it, in one transaction. An event the workflow's
   * current state does not handle is kept, not dropped, and offered again after each later
   * transition, in the order sent: an approval sent a moment before the workflow starts waiting
   * for it is not missed.
   */
  async send(id: string, event: WorkflowEvent): Promise<void> {
    const workflowId = parseId(id);
    if (workflowId === undefined) throw new NotFoundError(String(id), 'workflow');
    if (!event || typeof event !== 'object' || typeof event.type !== 'string' || event.type.length === 0) {
      throw new InvalidOptionError('event', event, 'an object with a string type, for example { type: "APPROVE" }');
    }
    if (event.type.startsWith('xstate.')) throw new InvalidOptionError('event.type', event.type, 'an event of your own (xstate.* events are sent by the engine)');
    const eventText = toJsonText(event, 'event');
    await this.#port.write(async (uow) => {
      const row = await uow.tx.getWorkflow(workflowId);
      if (!row) throw new NotFoundError(String(id), 'workflow');
      if (row.status !== 'running') throw new WorkflowError('WORKFLOW_FINISHED', `workflow ${id} is ${row.status}; it accepts no more events`);
      const eventId = await uow.tx.insertWorkflowEvent(workflowId, eventText, uow.now);
      const parsed = JSON.parse(eventText) as EventObject;
      if (!this.#accepts(row, parsed)) return;
      await uow.tx.markWorkflowEventApplied(eventId, uow.now);
      await this.#apply(uow, row, parsed, { refuseBadContext: true });
    });
    this.#timers.rearm();
  }

  /** The settle hook: a step promise finished for good, so its workflow receives `xstate.done.actor.*` or `xstate.error.actor.*`. */
  async #stepSettled(uow: UnitOfWork, settled: SettledPromise): Promise<void> {
    if (!settled.step) return;
    // What the workflow does next may store or drop timers.
    uow.afterCommit(() => this.#timers.rearm());
    await this.#stepFinished(uow, settled.step, settled);
  }

  async #stepFinished(uow: UnitOfWork, step: StepRef, settled: SettledPromise): Promise<void> {
    const row = await uow.tx.getWorkflow(step.workflowId);
    if (!row || row.status !== 'running') return;
    const persisted = JSON.parse(row.snapshot) as PersistedWorkflowSnapshot;
    // Only the current invocation's promise speaks for it: the state may have been left (and
    // the step cancelled) or re-entered (and a newer promise started) meanwhile.
    if (!persisted.children?.[step.invokeId]) return;
    if ((await uow.tx.latestStepOf(step.workflowId, step.invokeId)) !== step.promiseId) return;
    const event =
      settled.status === 'completed'
        ? { type: `xstate.done.actor.${step.invokeId}`, output: settled.result === null ? null : JSON.parse(settled.result) }
        : { type: `xstate.error.actor.${step.invokeId}`, error: settled.error };
    await this.#apply(uow, row, event, { refuseBadContext: false });
  }

  /** True when the stored state handles `event` (a snapshot that no longer fits counts as handling: applying it fails the workflow). */
  #accepts(row: WorkflowRow, event: EventObject): boolean {
    const definition = this.#definitions.get(row.name);
    if (!definition) return true;
    try {
      return acceptsWorkflowEvent(definition.machine, JSON.parse(row.snapshot) as PersistedWorkflowSnapshot, event);
    } catch {
      return true;
    }
  }

  /** Offers the events kept for later, oldest first; applies the first the new state handles (which offers the rest again). */
  async #offerKeptEvents(uow: UnitOfWork, workflowId: number): Promise<void> {
    const kept = await uow.tx.unappliedWorkflowEvents(workflowId);
    if (kept.length === 0) return;
    const row = await uow.tx.getWorkflow(workflowId);
    if (!row || row.status !== 'running') return;
    for (const stored of kept) {
      const event = JSON.parse(stored.event) as EventObject;
      if (!this.#accepts(row, event)) continue;
      await uow.tx.markWorkflowEventApplied(stored.id, uow.now);
      await this.#apply(uow, row, event, { refuseBadContext: false });
      return;
    }
  }

  async #apply(uow: UnitOfWork, row: WorkflowRow, event: EventObject, options: { refuseBadContext: boolean }): Promise<void> {
    const definition = this.#definitions.get(row.name);
    if (!definition) throw new WorkflowError('UNKNOWN_WORKFLOW', `workflow ${row.id} runs "${row.name}", which this process has not registered`);
    const persisted = JSON.parse(row.snapshot) as PersistedWorkflowSnapshot;
    const mismatch = row.version === definition.version ? null : snapshotMismatch(definition.machine, persisted);
    if (mismatch) return this.#failVersion(uow, row, mismatch);
    let step: MachineStep;
    try {
      step = applyWorkflowEvent(definition.machine, persisted, event);
    } catch (error) {
      return this.#failVersion(uow, row, (error as Error).message);
    }
    let snapshot: string;
    try {
      refuseUnmanagedActors(definition, step);
      snapshot = serialiseSnapshot(step);
    } catch (error) {
      if (options.refuseBadContext) throw error;
      // The last good snapshot is kept.
      const code = error instanceof WorkflowError ? error.code : 'INVALID_CONTEXT';
      return this.#finish(uow, row, row.snapshot, { status: 'failed', error: { code, message: (error as Error).message } }, event.type);
    }
    return this.#commitStep(uow, definition, row.id, step, snapshot, event.type);
  }

  /** Writes the new snapshot first, then what the transition asked for (so re-entrant step events see it). */
  async #commitStep(uow: UnitOfWork, definition: Definition, workflowId: number, step: MachineStep, snapshot: string, event: string): Promise<void> {
    const workflow = { id: workflowId, name: definition.name };
    if (step.status === 'done') return this.#finish(uow, workflow, snapshot, { status: 'completed', output: step.output ?? null }, event);
    if (step.status === 'error' || step.status === 'stopped') {
      const message = step.error instanceof Error ? step.error.message : JSON.stringify(step.error ?? 'stopped');
      return this.#finish(uow, workflow, snapshot, { status: 'failed', error: { code: 'WORKFLOW_ERROR', message } }, event);
    }
    const { tx, now } = uow;
    await tx.saveWorkflow({ id: workflowId, status: 'running', snapshot, output: null, errorCode: null, errorMessage: null, completedAt: null, now });
    this.#answerAfterCommit(uow, workflow, 'running', snapshot, null, null, event);
    for (const invokeId of step.stopped) await this.#cancelSteps(uow, workflowId, invokeId);
    for (const timerId of step.cancelled) await tx.deleteWorkflowTimer(workflowId, timerId);
    for (const timer of step.scheduled) {
      await tx.upsertWorkflowTimer({ workflowId, timerId: timer.id, event: JSON.stringify(timer.event), fireAt: now + timer.delay });
    }
    for (const started of step.started) {
      const spec = this.#port.specOf({ type: stepType(definition.name, started.src), payload: { input: started.input ?? null } }, `steps.${started.src}.input`);
      await this.#port.promises.create(uow, { ...spec, runAt: now, workflowId, invokeId: started.invokeId });
    }
    await this.#offerKeptEvents(uow, workflowId);
  }

  async #finish(uow: UnitOfWork, workflow: { id: number; name: string }, snapshot: string, finished: Finished, event: string): Promise<void> {
    const output = finished.status === 'completed' ? finished.output : null;
    const error = finished.status === 'failed' ? finished.error : null;
    await uow.tx.saveWorkflow({
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
    this.#answerAfterCommit(uow, workflow, finished.status, snapshot, output ?? null, error, event);
    await this.#cancelSteps(uow, workflow.id, null);
  }

  /** Once the unit of work commits (never if it rolls back): wake the workflow's waiters and tell the listeners. */
  #answerAfterCommit(
    uow: UnitOfWork,
    workflow: { id: number; name: string },
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

  #failVersion(uow: UnitOfWork, row: WorkflowRow, reason: string): Promise<void> {
    this.#port.log.error({ workflowId: row.id, workflow: row.name, reason }, 'stored snapshot does not fit the machine');
    // The snapshot is kept exactly as stored, for inspection and migration.
    const error = { code: 'WORKFLOW_VERSION_MISMATCH', message: `the stored snapshot does not fit workflow "${row.name}" any more: ${reason}` };
    return this.#finish(uow, row, row.snapshot, { status: 'failed', error }, 'xstate.error');
  }

  /** Cancels the unfinished step promises of one invocation (or of all, when `invokeId` is null). */
  async #cancelSteps(uow: UnitOfWork, workflowId: number, invokeId: string | null): Promise<void> {
    for (const step of await uow.tx.stepsOf(workflowId)) {
      if (invokeId !== null && step.invoke_id !== invokeId) continue;
      if (step.status === 'completed' || step.status === 'failed') continue;
      await this.#port.promises.cancel(uow, step.id);
    }
  }

  /** Resumes: fails workflows whose snapshot no longer fits, applies events stored but not applied, arms timers. */
  async resume(): Promise<{ running: number; versionMismatches: number }> {
    const running = await this.#port.store.runningWorkflows();
    let versionMismatches = 0;
    for (const { id } of running) {
      const failed = await this.#port.write(async (uow) => {
        const row = await uow.tx.getWorkflow(id);
        if (!row || row.status !== 'running') return false;
        const definition = this.#definitions.get(row.name);
        if (!definition) {
          this.#port.log.warn({ workflowId: id, workflow: row.name }, 'a running workflow of a name this process has not registered; left as it is');
          return false;
        }
        if (row.version !== definition.version) {
          const mismatch = snapshotMismatch(definition.machine, JSON.parse(row.snapshot));
          if (mismatch) {
            await this.#failVersion(uow, row, mismatch);
            return true;
          }
        }
        await this.#offerKeptEvents(uow, id);
        return false;
      });
      if (failed) versionMismatches++;
    }
    this.#timers.rearm();
    return { running: running.length, versionMismatches };
  }

  stop(): void {
    this.#timers.stop();
    this.#waiters.rejectAll((id) => new PromisedError('ENGINE_STOPPED', `engine stopped while waiting for workflow ${id}`));
  }

  list(filter: WorkflowFilter = {}): Promise<Array<Omit<WorkflowRecord, 'steps'>>> {
    return listWorkflows(this.#port.store, filter);
  }

  get(id: string): Promise<WorkflowRecord | undefined> {
    return readWorkflow(this.#port.store, id);
  }

  /** The machine's output once it reaches a final state; rejects if the workflow failed. */
  async result(id: string, timeout: number | undefined): Promise<unknown> {
    const workflowId = parseId(id);
    if (workflowId === undefined) throw new NotFoundError(String(id), 'workflow');
    return this.#waiters.wait(workflowId, timeout);
  }
}
