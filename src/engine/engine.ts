import { InvalidOptionError, NotFoundError } from '../errors.js';
import type { Store } from '../persistence/store.js';
import { Kernel } from '../kernel/kernel.js';
import type { ResolvedEngineOptions, TaskOptions } from '../kernel/options.js';
import { parseId } from '../kernel/records.js';
import type { TaskHandler } from '../kernel/task-context.js';
import { assertStorableName } from '../kernel/storable-text.js';
import { WorkflowRuntime } from '../workflows/workflow-runtime.js';
import { EngineWorkflows } from './engine-workflows.js';
import { EngineEmitter, type EngineEvents } from './events.js';
import { EngineMetrics } from './metrics.js';
import { Enqueuing } from './enqueuing.js';
import type { GraphNode } from './graph.js';
import { Inbox, type InboxHandler } from './inbox.js';
import { PeriodicSchedules } from './periodic-schedules.js';
import { readWorkflowStateAt, type WorkflowStateAt } from './workflow-state-at.js';
import { readLimitedKeys, readPausedTypes, readSchedules, type LimitedKey, type ScheduleInfo } from './schedule-reads.js';
import type { EnqueueItem, EnqueueOptions, InboxOptions, PeriodicContext, PeriodicOptions, RetryOptions, StartSummary } from './public-types.js';
import { isTypedTask, type AnyTypedTask, type CheckedGraph, type CheckedItems, type GraphIds, type ItemIds, type InputOf, type PromiseId, type ResultOf, type TaskItem, type TaskNode } from './typed-tasks.js';
import { detachedFromTrace } from '../kernel/tracing.js';

export type { EnqueueOptions, EnqueueItem, ListFilter, PageFilter, PromisePage, RetryOptions, EngineStats, StartSummary, DeadLetter, HistoryLine } from './public-types.js';

/**
 * The engine: registers task types, stores promises, and runs them. Its public API over the
 * promise kernel and what is built on the kernel's port (workflows, inboxes, periodic
 * schedules). Create one with {@link createEngine}.
 */
export class Engine extends EngineWorkflows {
  readonly #kernel: Kernel;
  readonly #emitter: EngineEmitter;
  readonly #metrics: EngineMetrics;
  readonly #workflows: WorkflowRuntime;
  readonly #periodics: PeriodicSchedules;
  readonly #inboxes = new Map<string, Inbox>();
  readonly #enqueuing: Enqueuing;

  /** @internal Use {@link createEngine}. */
  constructor(store: Store, options: ResolvedEngineOptions) {
    const emitter = new EngineEmitter();
    emitter.on('error', () => undefined);
    const kernel = new Kernel(store, options, emitter);
    super(kernel);
    this.#kernel = kernel;
    this.#emitter = emitter;
    this.#metrics = new EngineMetrics(emitter, () => this.stats());
    this.#workflows = new WorkflowRuntime(this.#kernel, {
      wanted: () => this.#emitter.listenerCount('workflow') > 0,
      emit: (change) => this.#emitter.emit('workflow', change),
    });
    this.useWorkflowRuntime(this.#workflows);
    this.#periodics = new PeriodicSchedules(this.#kernel);
    this.#enqueuing = new Enqueuing(this.#kernel);
  }

  /**
   * Registers a promise type and its handler, or a definition made by `defineTask` (its
   * handler is then required). Call before `start()`/`enqueue()` of that type.
   *
   * @example
   * ```ts
   * engine.task('review', async (payload: { file: string }, ctx) => {
   *   ctx.progress(1, 1);
   *   return { ok: true };
   * }, { retries: 3, timeout: 60_000 });
   * ```
   */
  task<P = any, R = unknown>(type: string, handler: TaskHandler<P, R>, options?: TaskOptions): this;
  task(definition: AnyTypedTask): this;
  task(type: string | AnyTypedTask, handler?: TaskHandler, options?: TaskOptions): this {
    this.#enqueuing.register(type, handler, options);
    return this;
  }

  /**
   * Registers a periodic promise: each due time of the 5- or 6-field cron expression (seconds
   * first when 6) creates one ordinary promise of type `periodic:<name>`, with retries, dead
   * letters and history like any other, exactly once across restarts and processes.
   *
   * @example
   * ```ts
   * engine.periodic('morning-sync', '0 7 * * *', async (ctx) => syncFeed(ctx.scheduledAt), { timezone: 'Europe/Berlin' });
   * ```
   */
  periodic(name: string, cron: string, handler: (ctx: PeriodicContext) => unknown, options: PeriodicOptions = {}): this {
    this.#periodics.define(name, cron, handler, options);
    return this;
  }

  /**
   * Registers an inbox: `inbox.receive(message, { id, receivedAt })` stores each message as a
   * durable promise (a repeated id is ignored) that `handler` processes; messages older than
   * `catchUpWindow` when first considered are recorded as `SKIPPED`.
   *
   * @example
   * ```ts
   * const mail = engine.inbox('mail', async (message) => file(message), { catchUpWindow: 3_600_000 });
   * await mail.receive({ subject: 'hi' }, { id: 'msg-1', receivedAt: new Date() });
   * ```
   */
  inbox<M = unknown>(name: string, handler: InboxHandler<M>, options: InboxOptions): Inbox {
    const inbox = Inbox.define(this.#kernel, name, handler, options);
    this.#inboxes.set(name, inbox);
    return inbox;
  }

  /** The registered task types. */
  get taskTypes(): string[] {
    return this.#kernel.tasks.types;
  }

  // ---- enqueueing ----

  /**
   * Stores a promise and returns its id once it is on disk. In `immediate` mode it also runs it
   * (and everything it makes runnable) before returning. Given a definition, the payload is
   * typed and checked by its schema, and the id is typed by its result (for `result(id)`).
   *
   * @example
   * ```ts
   * const id = await engine.enqueue('review', { file: 'auth.py' }, { priority: 1, key: 'review:auth.py' });
   * ```
   */
  enqueue<P = unknown>(type: string, payload?: P, options?: EnqueueOptions): Promise<string>;
  enqueue<T extends AnyTypedTask>(definition: T, payload: InputOf<T>, options?: EnqueueOptions): Promise<PromiseId<ResultOf<T>>>;
  async enqueue(task: string | AnyTypedTask, payload?: unknown, options: EnqueueOptions = {}): Promise<string> {
    const item = isTypedTask(task) ? { task, payload, ...options } : { type: task, payload, ...options };
    const [id] = await this.#enqueuing.enqueue([{ item, payloadPath: 'payload' }]);
    return id!;
  }

  /** Stores several independent promises (by type or by definition) in one transaction; all or none. Returns their ids in order. */
  enqueueMany(items: EnqueueItem[]): Promise<string[]>;
  enqueueMany<I extends ReadonlyArray<EnqueueItem | TaskItem<AnyTypedTask>> | []>(items: I & CheckedItems<I>): Promise<ItemIds<I>>;
  // The overloads type the ids; TypeScript cannot relate their mapped tuple to this body's string[].
  async enqueueMany(items: ReadonlyArray<EnqueueItem | TaskItem<AnyTypedTask>>): Promise<any> {
    if (!Array.isArray(items)) throw new InvalidOptionError('items', items, 'an array of { type, payload, ...options }');
    return this.#enqueuing.enqueue(items.map((item, index) => ({ item, payloadPath: `items[${index}].payload` })));
  }

  /**
   * Stores a named dependency graph in one transaction and returns the id of each node.
   * `dependsOn` names other nodes (or ids of existing promises); a cycle is refused.
   *
   * @example
   * ```ts
   * const ids = await engine.enqueueGraph({
   *   setup: { type: 'code', payload: { step: 'setup' } },
   *   test:  { type: 'code', payload: { step: 'tests' }, dependsOn: ['setup'] },
   * });
   * ```
   */
  enqueueGraph<G extends Record<string, GraphNode>>(graph: G): Promise<GraphIds<G> & Record<string, string>>;
  enqueueGraph<G extends Record<string, GraphNode | TaskNode<AnyTypedTask>>>(graph: G & CheckedGraph<G>): Promise<GraphIds<G>>;
  enqueueGraph(graph: Record<string, GraphNode | TaskNode<AnyTypedTask>>): Promise<Record<string, string>> {
    return this.#enqueuing.enqueueGraph(graph);
  }

  // ---- lifecycle ----

  /**
   * Resumes every unfinished promise in the database and starts working: waiting promises
   * re-check their parents, pending ones are claimed, and claims held by a dead process are
   * recovered at once (a live process's expired lease when it expires).
   */
  start(): Promise<StartSummary> {
    // Detached from the caller's trace: what starting arms (heartbeats, lease recovery, timers,
    // cron) and what resuming writes serve every promise, not the span that called start().
    return detachedFromTrace(() => this.#start())();
  }

  async #start(): Promise<StartSummary> {
    const summary: StartSummary = { ...(await this.#kernel.resume()), skippedMessages: 0, workflows: { running: 0, versionMismatches: 0 } };
    for (const inbox of this.#inboxes.values()) summary.skippedMessages += await inbox.skipStale();
    this.#kernel.begin();
    summary.workflows = await this.#workflows.resume();
    await this.#periodics.start();
    this.#kernel.log.info({ ...summary.resumed, recovered: summary.recovered, owner: this.owner }, 'engine started');
    this.#emitter.emit('started', summary);
    this.#kernel.wake();
    return summary;
  }

  /**
   * Stops gracefully: claims nothing more, waits up to `stopTimeoutMs` for running handlers and
   * commits their outcomes, hands back the claims still running (without counting the attempt),
   * and closes the database.
   */
  async stop(): Promise<void> {
    if (!this.#kernel.stopClaiming()) return;
    this.#emitter.emit('stopping');
    this.#periodics.stop();
    this.#workflows.stop();
    await this.#kernel.close();
  }


  // ---- workflows ----
  // The workflow methods (workflow, startWorkflow, send, getWorkflow, …) are in EngineWorkflows,
  // which this class extends: with the steering controls they would not fit here.

  /**
   * The workflow as it was right after transition `seq` of its history: the event, the state
   * values around it, its status and its context then (read from the snapshot stored with that
   * transition). For tools that step through a workflow's past.
   *
   * @example
   * ```ts
   * const { to, context } = await engine.workflowStateAt(id, 2);
   * ```
   */
  workflowStateAt(id: string, seq: number): Promise<WorkflowStateAt> {
    return readWorkflowStateAt(this.#kernel.store, id, seq);
  }

  // ---- schedules and limits ----

  /**
   * Every periodic schedule any process registered on this database: its cron expression, the
   * last due time that passed, the next one, and whether it is paused (`engine.pause('periodic:NAME')`).
   *
   * @example
   * ```ts
   * for (const { name, nextRunAt, paused } of await engine.schedules()) console.log(name, nextRunAt, paused);
   * ```
   */
  schedules(): Promise<ScheduleInfo[]> {
    return readSchedules(this.#kernel.store, this.#kernel.clock.now());
  }

  /**
   * Creates a run of a periodic schedule now, besides its cron times; the run's promise id.
   * The schedule must be registered in this process (`SCHEDULE_NOT_REGISTERED` otherwise).
   *
   * @example
   * ```ts
   * const runId = await engine.triggerSchedule('morning-sync');
   * ```
   */
  triggerSchedule(name: string): Promise<string> {
    return this.#periodics.trigger(name);
  }

  /** Task types paused in every process (`engine.pause(type)`), and since when. */
  pausedTypes(): Promise<Array<{ type: string; pausedAt: Date }>> {
    return readPausedTypes(this.#kernel.store);
  }

  /** The keys of per-key concurrency limits with work pending or running; `held` for those at their limit with work waiting. */
  limitedKeys(): Promise<LimitedKey[]> {
    return readLimitedKeys(this.#kernel.store, this.#kernel.tasks);
  }

  // ---- control ----

  /**
   * Cancels a waiting, pending or running promise: it fails with `CANCELLED`, a running handler's
   * `ctx.signal` aborts, and its dependents fail with `DEPENDENCY_FAILED`.
   */
  async cancel(id: string): Promise<void> {
    const rowId = parseId(id);
    if (rowId === undefined) throw new NotFoundError(String(id));
    await this.#kernel.cancel(rowId);
  }

  /**
   * Sends a failed promise back to `pending` with its attempts reset; with `payload`, that
   * payload replaces the stored one in the same transaction (checked as an enqueue's would be,
   * before anything is written); the keys it was enqueued with (idempotency, concurrency, rate)
   * stay as they were.
   *
   * @example
   * ```ts
   * await engine.retry(id, { payload: { file: 'auth.py', dryRun: true } });
   * ```
   */
  async retry(id: string, options: RetryOptions = {}): Promise<void> {
    const rowId = parseId(id);
    if (rowId === undefined) throw new NotFoundError(String(id));
    if (typeof options !== 'object' || options === null) throw new InvalidOptionError('options', options, 'an object { payload? }');
    let payload: string | undefined;
    if ('payload' in options) {
      const record = await this.get(id);
      if (!record) throw new NotFoundError(String(id));
      payload = await this.#enqueuing.retryPayload(record.type, options.payload);
    }
    await this.#kernel.retry(rowId, payload);
  }

  /**
   * Pauses a task type in every process on this database: its pending promises stay pending and
   * none is claimed until {@link Engine.resume}; running ones finish.
   *
   * @example
   * ```ts
   * await engine.pause('send-message');
   * ```
   */
  async pause(type: string): Promise<void> {
    checkedTypeName(type);
    await this.#kernel.write(async ({ tx, now }) => tx.pauseType(type, now));
  }

  /** Resumes a paused task type: every process may claim it again (woken by this commit). */
  async resume(type: string): Promise<void> {
    checkedTypeName(type);
    await this.#kernel.write(async ({ tx }) => tx.resumeType(type));
    this.#kernel.wake();
  }

  /**
   * The engine's metrics in the Prometheus text format: attempts, their durations, retries,
   * lease losses and dead letters by type, counted in this process; promises by type and status,
   * the oldest pending promise's age and paused types, read from the database at each call.
   *
   * @example
   * ```ts
   * const text = await engine.metrics();   // serve it as text/plain; version=0.0.4
   * ```
   */
  metrics(): Promise<string> {
    return this.#metrics.text();
  }

  /** Listens to engine events (`completed`, `failed`, `retrying`, `progress`, `transition`, `workflow`, `started`, `stopping`, `error`). */
  on<E extends keyof EngineEvents>(event: E, listener: (...args: EngineEvents[E]) => void): this {
    this.#emitter.on(event, listener as never);
    return this;
  }

  /** Removes a listener added with {@link Engine.on}. */
  off<E extends keyof EngineEvents>(event: E, listener: (...args: EngineEvents[E]) => void): this {
    this.#emitter.off(event, listener as never);
    return this;
  }
}

function checkedTypeName(type: unknown): void {
  if (typeof type !== 'string' || type.length === 0 || type.length > 200) throw new InvalidOptionError('type', type, 'a task type: a non-empty string of at most 200 characters');
  assertStorableName('type', type);
}
