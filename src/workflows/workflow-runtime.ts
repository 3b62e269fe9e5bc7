import type { AnyStateMachine } from 'xstate';
import { InvalidOptionError, NotFoundError, PromisedError } from '../errors.js';
import { toJsonText } from '../json.js';
import { initialWorkflowStep, snapshotMismatch, type PersistedWorkflowSnapshot } from '../machines/workflow-machine.js';
import type { KernelPort } from '../kernel/port.js';
import { parseId } from '../kernel/records.js';
import { ResultWaiters } from '../kernel/result-waiters.js';
import type { TaskContext, TaskHandler } from '../kernel/task-context.js';
import type { SettledPromise } from '../kernel/settle-hooks.js';
import type { StepRef } from '../kernel/transition-types.js';
import type { UnitOfWork } from '../kernel/unit-of-work.js';
import { stepType } from './step-types.js';
import { checkWorkflow, migratesFrom, pickStepOptions, refuseUnmanagedActors, serialiseSnapshot, type Definition } from './workflow-definitions.js';
import { COMPENSATION_DEADLINE, WorkflowControl } from './workflow-control.js';
import { WorkflowDriver } from './workflow-driver.js';
import { WorkflowError } from './workflow-errors.js';
import { WorkflowEvents } from './workflow-events.js';
import { readHistory, restartWorkflow } from './workflow-history.js';
import { listWorkflows, readWorkflow, settledOutput, type WorkflowFilter } from './workflow-reads.js';
import { WorkflowTimers } from './workflow-timers.js';
import { previewMigrations } from './migration-plan.js';
import { traceTransition } from './workflow-tracing.js';
import type { CancelResult, MigrationPreview, RestartOptions, SendResult, StartOptions, WorkflowEvent, WorkflowListeners, WorkflowOptions, WorkflowRecord, WorkflowStep, WorkflowSummary, WorkflowTransition } from './workflow-types.js';

/**
 * Durable workflows: a user's XState machine whose invoked actors are promises. Every
 * transition (start, a step's result, an external event, a due timer) is applied with the pure
 * `transition()` and committed in one unit of work together with everything it asked for: the
 * snapshot, new step promises, cancelled steps, stored timers. Built on the kernel's port only:
 * a step's settlement reaches its workflow through a settle hook, in the settling transaction.
 */
export class WorkflowRuntime {
  readonly #port: KernelPort;
  readonly #definitions = new Map<string, Definition>();
  readonly #waiters: ResultWaiters;
  readonly #timers: WorkflowTimers;
  readonly #driver: WorkflowDriver;
  readonly #events: WorkflowEvents;
  readonly #control: WorkflowControl;

  constructor(port: KernelPort, listeners: WorkflowListeners) {
    this.#port = port;
    this.#waiters = new ResultWaiters((id) => settledOutput(port.store, id), () => undefined);
    this.#driver = new WorkflowDriver(port, this.#definitions, listeners, this.#waiters);
    this.#events = new WorkflowEvents(port, this.#driver);
    this.#control = new WorkflowControl(port, this.#driver, (name) => this.#definitions.has(name));
    this.#driver.moved = (uow, workflowId) => this.#events.offerKept(uow, workflowId);
    this.#driver.stepCancelled = (uow, stepId) => this.#control.cancelChildOf(uow, stepId);
    this.#timers = new WorkflowTimers(port, (uow, row, event) => {
      if (!this.#definitions.has(row.name)) return Promise.resolve();
      if (event.type === COMPENSATION_DEADLINE) return this.#control.compensationOverdue(uow, row);
      return this.#driver.apply(uow, row, event, { refuseBadContext: false });
    });
    port.onSettled((uow, settled) => this.#stepSettled(uow, settled));
    port.onClockMoved({ nextDueAt: () => port.store.nextWorkflowTimerAt(), fireDue: () => this.#timers.fireDueNow() });
    // Another process changed the database: any awaited workflow may have finished there.
    port.onExternalChange(() => {
      this.#waiters.settleAll();
      this.#timers.rearm();
    });
  }

  /** Registers a workflow; its steps become task types `workflow:<name>:<step>`. */
  define(name: string, machine: AnyStateMachine, options: WorkflowOptions): void {
    if (this.#definitions.has(name)) throw new WorkflowError('DUPLICATE_WORKFLOW', `workflow "${name}" is already registered`);
    for (const step of Object.keys(options.steps ?? {})) {
      const stepOptions = pickStepOptions(options.stepOptions, step);
      // A step is one invocation of the machine with one input and one result: it cannot be
      // merged with another invocation's (debounce) or share a handler call (batch).
      for (const option of ['debounce', 'batch'] as const) {
        if (stepOptions?.[option] !== undefined) throw new InvalidOptionError(`stepOptions.${option}`, stepOptions[option], 'nothing: workflow steps are neither debounced nor batched');
      }
    }
    const definition = checkWorkflow(name, machine, options);
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
      return traceTransition({ id: null, name, trace_context: null }, 'xstate.init', async (span) => {
        const workflowId = await uow.tx.insertWorkflow({ name, input: inputText, snapshot, version: definition.version, parentStepId, key, traceContext: span.traceContext, now: uow.now });
        // Another transaction took the key first (PostgreSQL); it committed, so its workflow is the one.
        if (workflowId === undefined) return (await this.#byKey(uow, name, key!))!;
        span.started(workflowId);
        await this.#driver.commitStep(uow, definition, workflowId, step, snapshot, 'xstate.init', null);
        return workflowId;
      });
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

  /** Sends an external event; its outcome says whether it was applied, kept for later or dropped (see {@link WorkflowEvents}). */
  async send(id: string, event: WorkflowEvent, key: string | undefined): Promise<SendResult> {
    const result = await this.#events.send(id, event, key);
    this.#timers.rearm();
    return result;
  }

  /** Cancels a running workflow (see {@link WorkflowControl}). */
  async cancel(id: string): Promise<CancelResult> {
    const result = await this.#control.cancel(id);
    this.#timers.rearm();
    return result;
  }

  /** Pauses a running workflow (see {@link WorkflowControl.pause}); false when already paused. */
  pauseWorkflow(id: string): Promise<boolean> {
    return this.#control.pause(id);
  }

  /** Resumes a paused workflow; false when it was not paused. */
  async resumeWorkflow(id: string): Promise<boolean> {
    const resumed = await this.#control.resume(id);
    this.#timers.rearm();
    return resumed;
  }

  /** Every transition of a workflow, oldest first. */
  history(id: string): Promise<WorkflowTransition[]> {
    return readHistory(this.#port, id);
  }

  /** A new workflow from the snapshot after one transition of another (see {@link restartWorkflow}). */
  async restart(id: string, options: RestartOptions): Promise<string> {
    const started = await restartWorkflow(this.#port, this.#driver, id, options);
    this.#timers.rearm();
    return started;
  }

  /** Discards an event kept for a later state; false when it is not kept. */
  discardEvent(workflowId: string, eventId: string): Promise<boolean> {
    return this.#events.discard(workflowId, eventId);
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
    // The invocation as stored now: a migration may have handed the step to a new one while it ran.
    const invokeId = (await uow.tx.stateOf(step.promiseId))?.invoke_id ?? step.invokeId;
    // Only the current invocation's promise speaks for it: the state may have been left (and
    // the step cancelled) or re-entered (and a newer promise started) meanwhile.
    if (!persisted.children?.[invokeId]) return;
    if ((await uow.tx.latestStepOf(step.workflowId, invokeId)) !== step.promiseId) return;
    const event =
      settled.status === 'completed'
        ? { type: `xstate.done.actor.${invokeId}`, output: settled.result === null ? null : JSON.parse(settled.result) }
        : { type: `xstate.error.actor.${invokeId}`, error: settled.error };
    await this.#driver.apply(uow, row, event, { refuseBadContext: false });
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
        if (migratesFrom(definition, row.version)) {
          if (!(await this.#driver.migrate(uow, row, definition))) return true;
          // The migration's own transition rewrote the index and may have started steps.
          await this.#events.offerKept(uow, id);
          return false;
        }
        if (row.version !== definition.version) {
          const mismatch = snapshotMismatch(definition.machine, JSON.parse(row.snapshot));
          if (mismatch) {
            await this.#driver.failVersion(uow, row, mismatch);
            return true;
          }
        }
        // Rebuilt at each start: rows older than the index, and a machine changed since, are right after it.
        await this.#driver.indexAwaiting(uow, row);
        await this.#events.offerKept(uow, id);
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

  /** What `resume()` would do to each running workflow (of `name`), writing nothing. */
  previewMigrations(name: string | undefined): Promise<MigrationPreview[]> {
    return previewMigrations(this.#port.store, this.#definitions, name);
  }

  list(filter: WorkflowFilter = {}): Promise<WorkflowSummary[]> {
    return listWorkflows(this.#port.store, filter);
  }

  get(id: string): Promise<WorkflowRecord | undefined> {
    return readWorkflow(this.#port.store, id, this.#port.clock.now());
  }

  /** The machine's output once it reaches a final state; rejects if the workflow failed. */
  async result(id: string, timeout: number | undefined): Promise<unknown> {
    const workflowId = parseId(id);
    if (workflowId === undefined) throw new NotFoundError(String(id), 'workflow');
    return this.#waiters.wait(workflowId, timeout);
  }
}
