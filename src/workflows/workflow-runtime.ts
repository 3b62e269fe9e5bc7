import type { AnyStateMachine, EventObject } from 'xstate';
import { InvalidOptionError, InvalidPayloadError, NotFoundError, PromisedError, PromiseFailedError } from '../errors.js';
import { fromJsonText, toJsonText } from '../json.js';
import {
  acceptsWorkflowEvent,
  applyWorkflowEvent,
  initialWorkflowStep,
  actorSources,
  machineVersion,
  snapshotMismatch,
  type MachineStep,
  type PersistedWorkflowSnapshot,
} from '../machines/workflow-machine.js';
import type { WorkflowRow } from '../persistence/schema.js';
import type { Store, StoreTransaction } from '../persistence/store.js';
import type { EngineHost } from '../engine/engine-host.js';
import { toRecord, parseId, type PromiseRecord } from '../engine/records.js';
import { ResultWaiters } from '../engine/result-waiters.js';
import type { TaskOptions } from '../engine/options.js';
import type { TaskContext, TaskHandler } from '../engine/task-context.js';
import type { AppliedTransition, StepOutcome, StepRef } from '../engine/transitions.js';
import { WorkflowError } from './workflow-errors.js';

/** A step: a handler `(input, ctx) => output`, or `{ workflow: name }` to run another workflow as a child. */
export type WorkflowStep = TaskHandler | { workflow: string };

/** Options for {@link Engine.workflow}. */
export interface WorkflowOptions {
  /** One entry per actor the machine invokes, by its name in `setup({ actors })`. */
  steps: Record<string, WorkflowStep>;
  /** Task options (retries, timeout…) for every step, or per step name. */
  stepOptions?: TaskOptions | Record<string, TaskOptions>;
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
  steps: PromiseRecord[];
  createdAt: Date;
  completedAt: Date | null;
}

interface Definition {
  name: string;
  machine: AnyStateMachine;
  version: string;
  /** The step names: the only actors a transition may start. */
  steps: Set<string>;
}

const TIMER_BATCH = 100;
const MAX_TIMER_MS = 2 ** 31 - 1;

/** What the runtime needs beyond {@link EngineHost}. */
export interface WorkflowHost extends EngineHost {
  store: Store;
  registerTask(type: string, handler: TaskHandler, options?: TaskOptions): void;
  /** Runs a background task, reporting its failure on the engine's error channel. */
  background(work: () => Promise<unknown>, message: string): void;
  /** True when someone listens to `workflow` events (reading the rows costs a query each). */
  wantsWorkflowEvents(): boolean;
  emitWorkflow(change: WorkflowChange): void;
}

/** A workflow moved: the event applied and the state it led to. */
export type WorkflowChange = Pick<WorkflowRecord, 'id' | 'name' | 'status' | 'value' | 'context' | 'output' | 'error'> & { event: string; at: Date };

/**
 * Durable workflows: a user's XState machine whose invoked actors are promises. Every
 * transition (start, a step's result, an external event, a due timer) is applied with the pure
 * `transition()` and committed in one transaction together with everything it asked for: the
 * snapshot, new step promises, cancelled steps, stored timers.
 */
export class WorkflowRuntime {
  readonly #host: WorkflowHost;
  readonly #definitions = new Map<string, Definition>();
  readonly #waiters: ResultWaiters;
  /**
   * Changes each transaction wrote, answered (waiters woken, listeners told) after that
   * transaction's commit, without reading the rows again. Kept per transaction, not in one list:
   * on PostgreSQL transactions overlap, and one list let the commit of another transaction take
   * a change not yet committed, wake its waiters too early (they re-read the row: still running)
   * and leave nothing for the real commit; a re-run child step then waited for ever for its
   * child's result. Keyed by the transaction object the store passed to the work: a PostgreSQL
   * attempt that rolled back is never answered (its entry goes with its object); SQLite reuses
   * one object, serialised, so such entries are answered by its next commit, as before (waiters
   * re-read the row; a listener may hear of a change that did not commit, which is why
   * `workflow` events are for watching, never for deciding).
   */
  readonly #changes = new WeakMap<StoreTransaction, WorkflowChange[]>();
  #timer: NodeJS.Timeout | undefined;

  constructor(host: WorkflowHost) {
    this.#host = host;
    this.#waiters = new ResultWaiters((id) => this.#settledOutput(id), () => undefined);
  }

  /** Registers a workflow; its steps become task types `workflow:<name>:<step>`. */
  define(name: string, machine: AnyStateMachine, options: WorkflowOptions): void {
    if (typeof name !== 'string' || name.length === 0) throw new InvalidOptionError('name', name, 'a non-empty workflow name');
    if (this.#definitions.has(name)) throw new WorkflowError('DUPLICATE_WORKFLOW', `workflow "${name}" is already registered`);
    if (!machine || typeof (machine as { transition?: unknown }).transition !== 'function' || !(machine as { root?: unknown }).root) {
      throw new InvalidOptionError('machine', machine, 'an XState v5 machine (createMachine or setup(...).createMachine)');
    }
    const steps = options?.steps ?? {};
    const started = actorSources(machine);
    const inline = started.find((actor) => actor.src === null);
    if (inline) {
      throw new WorkflowError(
        'WORKFLOW_STEP_MISMATCH',
        inline.how === 'invoke'
          ? `state ${inline.state} invokes an inline actor; register it by name in setup({ actors }) and give it a step`
          : `state ${inline.state} spawns an inline actor (spawnChild with logic, not a name): restored from a snapshot it would be a silent zombie; register it by name in setup({ actors }) and give it a step`,
      );
    }
    const sources = new Set(started.map((actor) => actor.src!));
    for (const src of sources) {
      if (!Object.hasOwn(steps, src)) throw new WorkflowError('WORKFLOW_STEP_MISMATCH', `workflow "${name}" invokes "${src}" but steps has no "${src}"`);
    }
    for (const step of Object.keys(steps)) {
      if (!sources.has(step)) throw new WorkflowError('WORKFLOW_STEP_MISMATCH', `steps.${step} is never invoked by workflow "${name}" (it invokes: ${[...sources].join(', ') || 'nothing'})`);
    }
    for (const [step, implementation] of Object.entries(steps)) {
      const stepOptions = pickStepOptions(options.stepOptions, step);
      this.#host.registerTask(stepType(name, step), this.#stepHandler(implementation), stepOptions);
    }
    this.#definitions.set(name, { name, machine, version: machineVersion(machine), steps: new Set(Object.keys(steps)) });
  }

  #stepHandler(step: WorkflowStep): TaskHandler {
    if (typeof step === 'function') return (payload: { input: unknown }, ctx: TaskContext) => step(payload.input, ctx);
    if (step && typeof step === 'object' && typeof step.workflow === 'string') {
      const child = step.workflow;
      // The child is found again by its parent step on a re-run, so a crash never starts two.
      return async (payload: { input: unknown }, ctx: TaskContext) => {
        const id = await this.start(child, payload.input, Number(ctx.id));
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

  /** Starts a workflow; returns its id once its first state and first steps are on disk. */
  async start(name: string, input: unknown, parentStepId: number | null = null): Promise<string> {
    const definition = this.#definition(name);
    const inputText = toJsonText(input, 'input');
    const id = await this.#host.write(async (tx, now) => {
      if (parentStepId !== null) {
        const existing = await tx.workflowOfParentStep(parentStepId);
        if (existing !== undefined) return { value: existing, transitions: [] };
      }
      const step = initialWorkflowStep(definition.machine, JSON.parse(inputText));
      refuseUnmanagedActors(definition, step);
      const snapshot = serialiseSnapshot(step);
      const workflowId = await tx.insertWorkflow({ name, input: inputText, snapshot, version: definition.version, parentStepId, now });
      const transitions = await this.#commitStep(tx, definition, workflowId, step, snapshot, 'xstate.init', now);
      return { value: workflowId, transitions };
    });
    this.#afterCommit();
    return String(id);
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
    await this.#host.write(async (tx, now) => {
      const row = await tx.getWorkflow(workflowId);
      if (!row) throw new NotFoundError(String(id), 'workflow');
      if (row.status !== 'running') throw new WorkflowError('WORKFLOW_FINISHED', `workflow ${id} is ${row.status}; it accepts no more events`);
      const eventId = await tx.insertWorkflowEvent(workflowId, eventText, now);
      const parsed = JSON.parse(eventText) as EventObject;
      if (!this.#accepts(row, parsed)) return { value: undefined, transitions: [] };
      await tx.markWorkflowEventApplied(eventId, now);
      const transitions = await this.#apply(tx, row, parsed, now, { refuseBadContext: true });
      return { value: undefined, transitions };
    });
    this.#afterCommit();
  }

  /** A step promise finished for good: its workflow receives `xstate.done.actor.*` or `xstate.error.actor.*`. */
  async stepFinished(tx: StoreTransaction, step: StepRef, outcome: StepOutcome, now: number): Promise<AppliedTransition[]> {
    const row = await tx.getWorkflow(step.workflowId);
    if (!row || row.status !== 'running') return [];
    const persisted = JSON.parse(row.snapshot) as PersistedWorkflowSnapshot;
    // Only the current invocation's promise speaks for it: the state may have been left (and
    // the step cancelled) or re-entered (and a newer promise started) meanwhile.
    if (!persisted.children?.[step.invokeId]) return [];
    if ((await tx.latestStepOf(step.workflowId, step.invokeId)) !== step.promiseId) return [];
    const event =
      outcome.kind === 'done'
        ? { type: `xstate.done.actor.${step.invokeId}`, output: outcome.output }
        : { type: `xstate.error.actor.${step.invokeId}`, error: outcome.error };
    return this.#apply(tx, row, event, now, { refuseBadContext: false });
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
  async #offerKeptEvents(tx: StoreTransaction, workflowId: number, now: number): Promise<AppliedTransition[]> {
    const kept = await tx.unappliedWorkflowEvents(workflowId);
    if (kept.length === 0) return [];
    const row = await tx.getWorkflow(workflowId);
    if (!row || row.status !== 'running') return [];
    for (const stored of kept) {
      const event = JSON.parse(stored.event) as EventObject;
      if (!this.#accepts(row, event)) continue;
      await tx.markWorkflowEventApplied(stored.id, now);
      return this.#apply(tx, row, event, now, { refuseBadContext: false });
    }
    return [];
  }

  async #apply(tx: StoreTransaction, row: WorkflowRow, event: EventObject, now: number, options: { refuseBadContext: boolean }): Promise<AppliedTransition[]> {
    const definition = this.#definitions.get(row.name);
    if (!definition) throw new WorkflowError('UNKNOWN_WORKFLOW', `workflow ${row.id} runs "${row.name}", which this process has not registered`);
    const persisted = JSON.parse(row.snapshot) as PersistedWorkflowSnapshot;
    const mismatch = row.version === definition.version ? null : snapshotMismatch(definition.machine, persisted);
    if (mismatch) return this.#failVersion(tx, row, mismatch, now);
    let step: MachineStep;
    try {
      step = applyWorkflowEvent(definition.machine, persisted, event);
    } catch (error) {
      return this.#failVersion(tx, row, (error as Error).message, now);
    }
    let snapshot: string;
    try {
      refuseUnmanagedActors(definition, step);
      snapshot = serialiseSnapshot(step);
    } catch (error) {
      if (options.refuseBadContext) throw error;
      // The last good snapshot is kept.
      const code = error instanceof WorkflowError ? error.code : 'INVALID_CONTEXT';
      return this.#finish(tx, row, row.snapshot, 'failed', null, { code, message: (error as Error).message }, event.type, now);
    }
    return this.#commitStep(tx, definition, row.id, step, snapshot, event.type, now);
  }

  /** Writes the new snapshot first, then what the transition asked for (so re-entrant step events see it). */
  async #commitStep(
    tx: StoreTransaction,
    definition: Definition,
    workflowId: number,
    step: MachineStep,
    snapshot: string,
    event: string,
    now: number,
  ): Promise<AppliedTransition[]> {
    const workflow = { id: workflowId, name: definition.name };
    if (step.status === 'done') return this.#finish(tx, workflow, snapshot, 'completed', step.output ?? null, null, event, now);
    if (step.status === 'error' || step.status === 'stopped') {
      const message = step.error instanceof Error ? step.error.message : JSON.stringify(step.error ?? 'stopped');
      return this.#finish(tx, workflow, snapshot, 'failed', null, { code: 'WORKFLOW_ERROR', message }, event, now);
    }
    await tx.saveWorkflow({ id: workflowId, status: 'running', snapshot, output: null, errorCode: null, errorMessage: null, completedAt: null, now });
    this.#noteChange(tx, workflow, 'running', snapshot, null, null, event, now);
    const transitions: AppliedTransition[] = [];
    for (const invokeId of step.stopped) transitions.push(...(await this.#cancelSteps(tx, workflowId, invokeId, now)));
    for (const timerId of step.cancelled) await tx.deleteWorkflowTimer(workflowId, timerId);
    for (const timer of step.scheduled) {
      await tx.upsertWorkflowTimer({ workflowId, timerId: timer.id, event: JSON.stringify(timer.event), fireAt: now + timer.delay });
    }
    for (const started of step.started) {
      const spec = this.#host.specOf({ type: stepType(definition.name, started.src), payload: { input: started.input ?? null } }, `steps.${started.src}.input`);
      const created = await this.#host.transitions.create(tx, { ...spec, runAt: now, workflowId, invokeId: started.invokeId }, now);
      transitions.push(...created.transitions);
    }
    transitions.push(...(await this.#offerKeptEvents(tx, workflowId, now)));
    return transitions;
  }

  async #finish(
    tx: StoreTransaction,
    workflow: { id: number; name: string },
    snapshot: string,
    status: 'completed' | 'failed',
    output: unknown,
    error: { code: string; message: string } | null,
    event: string,
    now: number,
  ): Promise<AppliedTransition[]> {
    const workflowId = workflow.id;
    await tx.saveWorkflow({
      id: workflowId,
      status,
      snapshot,
      output: output === null || output === undefined ? null : toJsonText(output, 'output'),
      errorCode: error?.code ?? null,
      errorMessage: error?.message ?? null,
      completedAt: now,
      now,
    });
    await tx.deleteWorkflowTimers(workflowId);
    this.#noteChange(tx, workflow, status, snapshot, output ?? null, error, event, now);
    return this.#cancelSteps(tx, workflowId, null, now);
  }

  #noteChange(
    tx: StoreTransaction,
    workflow: { id: number; name: string },
    status: WorkflowRecord['status'],
    snapshot: string,
    output: unknown,
    error: { code: string; message: string } | null,
    event: string,
    now: number,
  ): void {
    const { value, context } = JSON.parse(snapshot) as PersistedWorkflowSnapshot;
    let changes = this.#changes.get(tx);
    if (!changes) this.#changes.set(tx, (changes = []));
    changes.push({
      id: String(workflow.id),
      name: workflow.name,
      status,
      value,
      context,
      output,
      error,
      event,
      at: new Date(now),
    });
  }

  async #failVersion(tx: StoreTransaction, row: WorkflowRow, reason: string, now: number): Promise<AppliedTransition[]> {
    this.#host.log.error({ workflowId: row.id, workflow: row.name, reason }, 'stored snapshot does not fit the machine');
    // The snapshot is kept exactly as stored, for inspection and migration.
    const error = { code: 'WORKFLOW_VERSION_MISMATCH', message: `the stored snapshot does not fit workflow "${row.name}" any more: ${reason}` };
    return this.#finish(tx, row, row.snapshot, 'failed', null, error, 'xstate.error', now);
  }

  /** Cancels the unfinished step promises of one invocation (or of all, when `invokeId` is null). */
  async #cancelSteps(tx: StoreTransaction, workflowId: number, invokeId: string | null, now: number): Promise<AppliedTransition[]> {
    const transitions: AppliedTransition[] = [];
    for (const step of await tx.stepsOf(workflowId)) {
      if (invokeId !== null && step.invoke_id !== invokeId) continue;
      if (step.status === 'completed' || step.status === 'failed') continue;
      transitions.push(...(await this.#host.transitions.cancel(tx, step.id, now)));
    }
    return transitions;
  }

  // ---- timers: one timer for the earliest stored delayed event ----

  /** Resumes: fails workflows whose snapshot no longer fits, applies events stored but not applied, arms timers. */
  async resume(): Promise<{ running: number; versionMismatches: number }> {
    const running = await this.#host.store.runningWorkflows();
    let versionMismatches = 0;
    for (const { id } of running) {
      const failed = await this.#host.write(async (tx, now) => {
        const row = await tx.getWorkflow(id);
        if (!row || row.status !== 'running') return { value: false, transitions: [] };
        const definition = this.#definitions.get(row.name);
        if (!definition) {
          this.#host.log.warn({ workflowId: id, workflow: row.name }, 'a running workflow of a name this process has not registered; left as it is');
          return { value: false, transitions: [] };
        }
        if (row.version !== definition.version) {
          const mismatch = snapshotMismatch(definition.machine, JSON.parse(row.snapshot));
          if (mismatch) return { value: true, transitions: await this.#failVersion(tx, row, mismatch, now) };
        }
        return { value: false, transitions: await this.#offerKeptEvents(tx, id, now) };
      });
      if (failed) versionMismatches++;
    }
    this.#afterCommit();
    return { running: running.length, versionMismatches };
  }

  stop(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#waiters.rejectAll((id) => new PromisedError('ENGINE_STOPPED', `engine stopped while waiting for workflow ${id}`));
  }

  /**
   * Called by the engine after every commit it makes (all of this runtime's writes go through
   * it), with the transaction that committed: answer the waiters of the workflows that
   * transaction changed, and tell the listeners.
   */
  answer(tx: StoreTransaction): void {
    const changes = this.#changes.get(tx);
    if (!changes) return;
    this.#changes.delete(tx);
    for (const id of new Set(changes.map((change) => Number(change.id)))) void this.#waiters.settle(id);
    if (this.#host.wantsWorkflowEvents()) for (const change of changes) this.#host.emitWorkflow(change);
  }

  /** After a commit that may have changed workflow timers: re-arm the timer. */
  #afterCommit(): void {
    if (this.#host.started) this.#host.background(() => this.#armTimer(), 'could not arm the workflow timer');
  }

  /** Called by the engine after a commit of its own that touched workflow steps. */
  changed(): void {
    this.#afterCommit();
  }

  /** Another process changed the database: any awaited workflow may have finished there. */
  changedElsewhere(): void {
    this.#waiters.settleAll();
    this.#afterCommit();
  }

  async #armTimer(): Promise<void> {
    const at = await this.#host.store.nextWorkflowTimerAt();
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (at === null || !this.#host.started) return;
    this.#timer = setTimeout(() => this.#host.background(() => this.#fireDueTimers(), 'could not fire workflow timers'), Math.min(Math.max(0, at - this.#host.clock.now()), MAX_TIMER_MS));
    this.#timer.unref();
  }

  async #fireDueTimers(): Promise<void> {
    for (;;) {
      const fired = await this.#host.write(async (tx, now) => {
        const due = await tx.dueWorkflowTimers(now, TIMER_BATCH);
        const transitions: AppliedTransition[] = [];
        for (const timer of due) {
          // Deleting first is the claim: of two processes, only one applies the event.
          if (!(await tx.deleteWorkflowTimer(timer.workflow_id, timer.timer_id))) continue;
          const row = await tx.getWorkflow(timer.workflow_id);
          if (row?.status === 'running' && this.#definitions.has(row.name)) {
            transitions.push(...(await this.#apply(tx, row, JSON.parse(timer.event), now, { refuseBadContext: false })));
          }
        }
        return { value: due.length, transitions };
      });
      if (fired < TIMER_BATCH) break;
    }
    this.#afterCommit();
  }

  // ---- reading ----

  /** Workflows without their steps, newest first. */
  async list(filter: { status?: WorkflowRecord['status']; name?: string; limit?: number } = {}): Promise<Array<Omit<WorkflowRecord, 'steps'>>> {
    if (filter.status !== undefined && !['running', 'completed', 'failed'].includes(filter.status)) {
      throw new InvalidOptionError('status', filter.status, 'running | completed | failed');
    }
    const limit = filter.limit ?? 100;
    if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw new InvalidOptionError('limit', limit, 'an integer from 1 to 10000');
    const rows = await this.#host.store.listWorkflows({ status: filter.status, name: filter.name, limit });
    return rows.map((row) => summaryOf(row));
  }

  async get(id: string): Promise<WorkflowRecord | undefined> {
    const workflowId = parseId(id);
    if (workflowId === undefined) return undefined;
    const row = await this.#host.store.getWorkflow(workflowId);
    if (!row) return undefined;
    const steps = await this.#host.store.stepsOf(workflowId);
    return {
      ...summaryOf(row),
      steps: await Promise.all(steps.map(async (step) => toRecord(step, await this.#host.store.dependenciesOf(step.id)))),
    };
  }

  /** The machine's output once it reaches a final state; rejects if the workflow failed. */
  async result(id: string, timeout: number | undefined): Promise<unknown> {
    const workflowId = parseId(id);
    if (workflowId === undefined) throw new NotFoundError(String(id), 'workflow');
    return this.#waiters.wait(workflowId, timeout);
  }

  async #settledOutput(id: number): Promise<{ value: unknown } | undefined> {
    const row = await this.#host.store.getWorkflow(id);
    if (!row) throw new NotFoundError(String(id), 'workflow');
    if (row.status === 'completed') return { value: fromJsonText(row.output) };
    if (row.status === 'failed') throw new PromiseFailedError(String(id), { code: row.error_code ?? 'WORKFLOW_ERROR', message: row.error_message ?? '' });
    return undefined;
  }
}

function summaryOf(row: WorkflowRow): Omit<WorkflowRecord, 'steps'> {
  const snapshot = JSON.parse(row.snapshot) as PersistedWorkflowSnapshot;
  return {
    id: String(row.id),
    name: row.name,
    status: row.status as WorkflowRecord['status'],
    value: snapshot.value,
    context: snapshot.context,
    output: fromJsonText(row.output),
    error: row.error_code === null ? null : { code: row.error_code, message: row.error_message ?? '' },
    createdAt: new Date(row.created_at),
    completedAt: row.completed_at === null ? null : new Date(row.completed_at),
  };
}

/** The task type of a workflow's step. */
export function stepType(workflow: string, step: string): string {
  return `workflow:${workflow}:${step}`;
}

function pickStepOptions(options: WorkflowOptions['stepOptions'], step: string): TaskOptions | undefined {
  if (!options) return undefined;
  const perStep = (options as Record<string, TaskOptions>)[step];
  if (perStep && typeof perStep === 'object') return perStep;
  const keys = Object.keys(options);
  const looksPerStep = keys.length > 0 && keys.every((key) => typeof (options as Record<string, unknown>)[key] === 'object');
  return looksPerStep ? undefined : (options as TaskOptions);
}

/**
 * Every actor a transition starts must be a step: one spawned from inline logic, spawned with
 * `spawn` inside `assign` (no action reports it), or named but without a step would be kept in
 * the snapshot and never run: a silent zombie after any restore.
 */
function refuseUnmanagedActors(definition: Definition, step: MachineStep): void {
  const unmanaged = step.unmanaged[0];
  if (unmanaged) {
    const what = unmanaged.src === null ? 'an inline actor' : `"${unmanaged.src}" without a spawnChild action (spawn inside assign or enqueueActions)`;
    throw new WorkflowError(
      'WORKFLOW_STEP_MISMATCH',
      `workflow "${definition.name}" spawned ${what} as "${unmanaged.id}": it would never run and never finish; start steps with invoke or spawnChild("name") of an actor named in setup({ actors }) with a step`,
    );
  }
  const stray = step.started.find((started) => !definition.steps.has(started.src));
  if (stray) throw new WorkflowError('WORKFLOW_STEP_MISMATCH', `workflow "${definition.name}" started "${stray.src}" as "${stray.invokeId}", which has no step; add steps.${stray.src}`);
}

// Context must survive JSON: a BigInt, Map or Date in it would be lost or throw on resume.
function serialiseSnapshot(step: MachineStep): string {
  try {
    return toJsonText(step.persisted, 'snapshot');
  } catch (error) {
    if (error instanceof InvalidPayloadError) throw new InvalidPayloadError(error.path.replace(/^snapshot/, 'context'), error.message.replace(/^.*?: /, ''));
    throw error;
  }
}
