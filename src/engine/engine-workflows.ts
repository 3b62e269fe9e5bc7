import type { AnyStateMachine, EventObject } from 'xstate';
import { InvalidOptionError } from '../errors.js';
import type { Kernel } from '../kernel/kernel.js';
import { EngineReads, timeoutOption } from './engine-reads.js';
import { isTypedWorkflow, type AnyTypedWorkflow, type WorkflowEventOf, type WorkflowId, type WorkflowInputOf, type WorkflowOutputOf } from './typed-workflows.js';
import { optionalKey } from '../workflows/workflow-input.js';
import { WorkflowError } from '../workflows/workflow-errors.js';
import type { WorkflowFilter } from '../workflows/workflow-reads.js';
import type { WorkflowRuntime } from '../workflows/workflow-runtime.js';
import type {
  CancelResult,
  MigrationPreview,
  RestartOptions,
  WorkflowTransition,
  SendResult,
  WorkflowEvent,
  WorkflowOptions,
  WorkflowRecord,
  WorkflowSendOptions,
  WorkflowStartOptions,
  WorkflowSummary,
} from '../workflows/workflow-types.js';

/**
 * The workflow half of the engine's public API: registering, starting and steering workflows.
 * {@link Engine} extends it (so it stays one object with one set of names); this class only
 * validates at the boundary and hands each call to the workflow runtime.
 */
export class EngineWorkflows extends EngineReads {
  #runtime: WorkflowRuntime | undefined;

  /** @internal */
  constructor(kernel: Kernel) {
    super(kernel);
  }

  /** @internal The engine hands its runtime over once, in its constructor. */
  protected useWorkflowRuntime(runtime: WorkflowRuntime): void {
    this.#runtime = runtime;
  }

  get #workflows(): WorkflowRuntime {
    return this.#runtime!;
  }

  /**
   * Registers a workflow: an XState v5 machine whose invoked actors (named in `setup({ actors })`)
   * run as durable steps. Each entry of `steps` is the handler `(input, ctx) => output` of the
   * actor of that name, or `{ workflow: name }` to run another workflow as a child. Or a
   * definition made by `defineWorkflow`, with its own options or the ones given here.
   *
   * @example
   * ```ts
   * engine.workflow('ci', machine, { steps: { setupEnv: async (input) => ({ ok: true }), runTests: async () => 'green' } });
   * ```
   */
  workflow(name: string, machine: AnyStateMachine, options: WorkflowOptions): this;
  workflow(definition: AnyTypedWorkflow, options?: WorkflowOptions): this;
  workflow(name: string | AnyTypedWorkflow, machineOrOptions?: AnyStateMachine | WorkflowOptions, options?: WorkflowOptions): this {
    if (isTypedWorkflow(name)) {
      const given = (machineOrOptions as WorkflowOptions | undefined) ?? name.options;
      if (given === undefined) throw new InvalidOptionError('options', given, `the steps of workflow "${name.name}": engine.workflow(definition, { steps }) or defineWorkflow(name, machine, { steps })`);
      this.#workflows.define(name.name, name.machine, given);
    } else {
      this.#workflows.define(name, machineOrOptions as AnyStateMachine, options as WorkflowOptions);
    }
    return this;
  }

  /** The names of the registered workflows. */
  get workflowNames(): string[] {
    return this.#workflows.names;
  }

  /** The machine registered as workflow `name` (for tools that draw or inspect it), or `undefined`. */
  workflowMachine(name: string): AnyStateMachine | undefined {
    return this.#workflows.machineOf(name);
  }

  /**
   * Starts a workflow; returns its id once its first state and first steps are on disk. With a
   * `key`, a workflow already started with that key is returned and nothing is written.
   *
   * @example
   * ```ts
   * const id = await engine.startWorkflow('ci', { repo: 'acme/api' }, { key: 'pr-42' });
   * ```
   *
   * Given a definition made by `defineWorkflow`, the input is typed by its machine's
   * `types.input`, and the id it resolves types `send` and `workflowResult`; the definition's
   * machine must be the one registered under its name.
   */
  startWorkflow(name: string, input?: unknown, options?: WorkflowStartOptions): Promise<string>;
  startWorkflow<W extends AnyTypedWorkflow>(definition: W, input: WorkflowInputOf<W>, options?: WorkflowStartOptions): Promise<WorkflowId<WorkflowEventOf<W>, WorkflowOutputOf<W>>>;
  async startWorkflow(workflow: string | AnyTypedWorkflow, input?: unknown, options?: WorkflowStartOptions): Promise<string> {
    const key = optionalKey(options);
    return this.#workflows.start(this.#nameOf(workflow), input ?? {}, { key });
  }

  /** The name of a workflow given by name or by definition; a definition whose machine is not the registered one is refused. */
  #nameOf(workflow: string | AnyTypedWorkflow): string {
    if (!isTypedWorkflow(workflow)) return workflow;
    const registered = this.#workflows.machineOf(workflow.name);
    if (registered !== undefined && registered !== workflow.machine) {
      throw new WorkflowError('DUPLICATE_WORKFLOW', `workflow "${workflow.name}" is registered with another machine than this definition's; import one definition on both sides`);
    }
    return workflow.name;
  }

  /**
   * Sends an external event to a running workflow, stored with its outcome in one transaction:
   * `accepted` (applied), `kept` (for a state the workflow is moving towards on its own, for a
   * bounded time) or `dropped`. With a `key`, a repeated send is the same event: it answers the
   * first one's outcome and writes nothing.
   *
   * @example
   * ```ts
   * const { outcome } = await engine.send(id, { type: 'APPROVE', by: 'ada' }, { key: 'approve:7' });
   * if (outcome === 'dropped') console.log('nothing waits for an approval now');
   * ```
   *
   * Given an id from `startWorkflow(definition, …)` (or annotated `WorkflowId<E>`), the event
   * must be one of its machine's `types.events`.
   */
  send<E extends EventObject = WorkflowEvent>(id: WorkflowId<E, any>, event: NoInfer<E>, options?: WorkflowSendOptions): Promise<SendResult> {
    return this.#workflows.send(id, event as unknown as WorkflowEvent, optionalKey(options));
  }

  /**
   * Discards an event kept for a later state (listed in `getWorkflow(id).keptEvents`); resolves
   * `false` when it is not kept any more (applied, discarded, lapsed).
   *
   * @example
   * ```ts
   * const { outcome, eventId } = await engine.send(id, { type: 'APPROVE' });
   * if (outcome === 'kept') await engine.discardEvent(id, eventId);
   * ```
   */
  discardEvent(workflowId: string, eventId: string): Promise<boolean> {
    return this.#workflows.discardEvent(workflowId, eventId);
  }

  /**
   * Cancels a running workflow; it ends `failed` with `CANCELLED`. If its current state handles
   * the event `promised.cancel`, the machine receives it first and may compensate (start steps)
   * until it reaches a final state, fails or its `compensationTimeout` passes (`compensating`);
   * otherwise, or when cancelled again, it ends at once (`cancelled`): running steps' signals
   * abort and their late outcomes are refused, child workflows are cancelled, timers dropped and
   * kept events discarded.
   *
   * @example
   * ```ts
   * const { outcome } = await engine.cancelWorkflow(id);   // 'cancelled' | 'compensating'
   * ```
   */
  cancelWorkflow(id: string): Promise<CancelResult> {
    return this.#workflows.cancel(id);
  }

  /**
   * Pauses a running workflow: no step of it is claimed and no timer of it fires until
   * `resumeWorkflow` (its pending steps and timers are held, and so are those it starts
   * meanwhile; a step already running finishes). Events still reach its machine under the
   * event rule. Child workflows its steps run are paused with it. Resolves `false` when it was
   * paused already.
   *
   * @example
   * ```ts
   * await engine.pauseWorkflow(id);
   * await engine.resumeWorkflow(id);
   * ```
   */
  pauseWorkflow(id: string): Promise<boolean> {
    return this.#workflows.pauseWorkflow(id);
  }

  /** Resumes a paused workflow (and the child workflows paused with it): held steps become claimable, held timers fire when due. Resolves `false` when it was not paused. */
  resumeWorkflow(id: string): Promise<boolean> {
    return this.#workflows.resumeWorkflow(id);
  }

  /**
   * Every transition of a workflow, oldest first: `{ seq, event, from, to, status, at }` (state
   * values before and after). Each is stored, with the snapshot after it, in the transaction of
   * the transition itself.
   *
   * @example
   * ```ts
   * for (const { seq, event, from, to } of await engine.workflowHistory(id)) console.log(seq, event, from, '→', to);
   * ```
   */
  workflowHistory(id: string): Promise<WorkflowTransition[]> {
    return this.#workflows.history(id);
  }

  /**
   * Starts a new workflow from the snapshot stored after transition `fromSeq` of another (which
   * is left as it is): the same name and input, the steps running then started again with their
   * input, the timers set then with the delays they had left. Returns the new workflow's id.
   *
   * @example
   * ```ts
   * const copy = await engine.restartWorkflow(id, { fromSeq: 3 });
   * ```
   */
  restartWorkflow(id: string, options: RestartOptions): Promise<string> {
    return this.#workflows.restart(id, options);
  }

  /** The workflow with this id (state value, context, steps, kept events), or `undefined`. */
  getWorkflow(id: string): Promise<WorkflowRecord | undefined> {
    return this.#workflows.get(id);
  }

  /**
   * Workflows (without their steps and kept events), newest first. With `awaiting`, only the
   * running ones whose current state has a transition for that event type, read from an index
   * written in the transaction of each transition (no snapshot is scanned).
   *
   * @example
   * ```ts
   * const waiting = await engine.listWorkflows({ awaiting: 'APPROVE', name: 'expense', limit: 50 });
   * ```
   */
  listWorkflows(filter: WorkflowFilter = {}): Promise<WorkflowSummary[]> {
    return this.#workflows.list(filter);
  }

  /**
   * What `start()` would do, with the workflows registered now, to every running workflow (of
   * `name`, when given), writing nothing: which would be migrated (from which state to which,
   * the context upgraded, steps handed over, started or cancelled, timers dropped or set), which
   * would fail with `WORKFLOW_VERSION_MISMATCH` and why, which resume as they are. The
   * `migrate.context` upgrades run, so they must have no effects of their own.
   *
   * @example
   * ```ts
   * for (const preview of await engine.previewWorkflowMigrations({ name: 'release' })) {
   *   if (preview.outcome === 'fail') console.log(preview.id, preview.error?.stage, preview.error?.message);
   * }
   * ```
   */
  async previewWorkflowMigrations(options: { name?: string } = {}): Promise<MigrationPreview[]> {
    const name = options?.name;
    if (name !== undefined && (typeof name !== 'string' || name.length === 0)) throw new InvalidOptionError('name', name, 'a workflow name');
    return this.#workflows.previewMigrations(name);
  }

  /** Waits for the workflow's output (its machine's final state, typed by the id's machine); rejects with `PromiseFailedError` if it failed. */
  async workflowResult<R = unknown>(id: WorkflowId<any, R>, options: { timeout?: number } = {}): Promise<R> {
    const timeout = timeoutOption(options.timeout);
    return (await this.#workflows.result(id, timeout)) as R;
  }
}
