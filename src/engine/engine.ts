import { InvalidOptionError, NotFoundError } from '../errors.js';
import { PROMISE_STATUSES } from '../machines/promise-machine.js';
import type { Store } from '../persistence/store.js';
import { Kernel } from '../kernel/kernel.js';
import { integerIn, type ResolvedEngineOptions, type TaskOptions } from '../kernel/options.js';
import { parseId, toRecord, type PromiseRecord } from '../kernel/records.js';
import type { TaskContext, TaskHandler } from '../kernel/task-context.js';
import { MAX_TIMER_MS } from '../kernel/timers.js';
import type { NewPromiseSpec } from '../kernel/transition-types.js';
import { WorkflowRuntime } from '../workflows/workflow-runtime.js';
import { EngineWorkflows } from './engine-workflows.js';
import { EngineEmitter, type EngineEvents } from './events.js';
import { orderGraph, type GraphNode } from './graph.js';
import { Inbox } from './inbox.js';
import { parseCron, PeriodicSchedules } from './periodic-schedules.js';
import type { DeadLetter, EnqueueItem, EnqueueOptions, EngineStats, HistoryLine, InboxOptions, ListFilter, PeriodicContext, PeriodicOptions, StartSummary } from './public-types.js';
import { readHistory, readStats, toDeadLetter } from './reports.js';

export type { EnqueueOptions, EnqueueItem, ListFilter, EngineStats, StartSummary, DeadLetter, HistoryLine } from './public-types.js';

/**
 * The engine: registers task types, stores promises, and runs them. Its public API over the
 * promise kernel and what is built on the kernel's port (workflows, inboxes, periodic
 * schedules). Create one with {@link createEngine}.
 */
export class Engine extends EngineWorkflows {
  readonly #kernel: Kernel;
  readonly #emitter = new EngineEmitter();
  readonly #workflows: WorkflowRuntime;
  readonly #periodics: PeriodicSchedules;
  readonly #inboxes = new Map<string, Inbox>();

  /** @internal Use {@link createEngine}. */
  constructor(store: Store, options: ResolvedEngineOptions) {
    super();
    this.#emitter.on('error', () => undefined);
    this.#kernel = new Kernel(store, options, this.#emitter);
    this.#workflows = new WorkflowRuntime(this.#kernel, {
      wanted: () => this.#emitter.listenerCount('workflow') > 0,
      emit: (change) => this.#emitter.emit('workflow', change),
    });
    this.useWorkflowRuntime(this.#workflows);
    this.#periodics = new PeriodicSchedules(this.#kernel);
  }

  /** The store this engine writes to (for tools built on the engine). @internal */
  get store(): Store {
    return this.#kernel.store;
  }

  /** This process's lease owner id (`host:pid:nonce`). */
  get owner(): string {
    return this.#kernel.owner;
  }

  /**
   * Registers a promise type and its handler. Call before `start()`/`enqueue()` of that type.
   *
   * @example
   * ```ts
   * engine.task('review', async (payload: { file: string }, ctx) => {
   *   ctx.progress(1, 1);
   *   return { ok: true };
   * }, { retries: 3, timeout: 60_000 });
   * ```
   */
  task<P = any, R = unknown>(type: string, handler: TaskHandler<P, R>, options?: TaskOptions): this {
    this.#kernel.registerTask(type, handler as TaskHandler, options);
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
    if (typeof name !== 'string' || name.length === 0) throw new InvalidOptionError('name', name, 'a non-empty schedule name');
    const { timezone, catchUp = 'once', ...taskOptions } = options;
    const parsed = parseCron(name, cron, timezone);
    if (catchUp !== 'once' && catchUp !== 'skip') throw new InvalidOptionError('catchUp', catchUp, '"once" or "skip"');
    if (typeof handler !== 'function') throw new InvalidOptionError('handler', handler, 'a function (ctx) => result');
    const type = `periodic:${name}`;
    this.task(type, (payload: { scheduledAt: string }, ctx) => handler({ ...ctx, scheduledAt: new Date(payload.scheduledAt) }), taskOptions);
    this.#periodics.add({ name, type, pattern: cron, timezone: timezone ?? null, catchUp, cron: parsed });
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
  inbox<M = unknown>(name: string, handler: (message: M, ctx: TaskContext & { messageId: string; receivedAt: Date }) => unknown, options: InboxOptions): Inbox {
    if (typeof name !== 'string' || name.length === 0) throw new InvalidOptionError('name', name, 'a non-empty inbox name');
    const { catchUpWindow, ...taskOptions } = options ?? ({} as InboxOptions);
    integerIn('catchUpWindow', catchUpWindow, 0, Number.MAX_SAFE_INTEGER);
    const inbox = new Inbox(this.#kernel, name, catchUpWindow);
    this.task(
      inbox.type,
      (payload: { id: string; message: M; receivedAt: string }, ctx) => handler(payload.message, { ...ctx, messageId: payload.id, receivedAt: new Date(payload.receivedAt) }),
      taskOptions,
    );
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
   * (and everything it makes runnable) before returning.
   *
   * @example
   * ```ts
   * const id = await engine.enqueue('review', { file: 'auth.py' }, { priority: 1, key: 'review:auth.py' });
   * ```
   */
  async enqueue<P = unknown>(type: string, payload?: P, options: EnqueueOptions = {}): Promise<string> {
    const spec = this.#kernel.specOf({ type, payload, ...options }, 'payload');
    const [id] = await this.#insert([spec]);
    return String(id);
  }

  /** Stores several independent promises in one transaction; all or none. Returns their ids in order. */
  async enqueueMany(items: EnqueueItem[]): Promise<string[]> {
    if (!Array.isArray(items)) throw new InvalidOptionError('items', items, 'an array of { type, payload, ...options }');
    const specs = items.map((item, index) => this.#kernel.specOf(item, `items[${index}].payload`));
    return (await this.#insert(specs)).map(String);
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
  async enqueueGraph(graph: Record<string, GraphNode>): Promise<Record<string, string>> {
    const order = orderGraph(graph);
    const nodes = order.map((name) => {
      const node = graph[name]!;
      const external = (node.dependsOn ?? []).filter((parent) => !Object.hasOwn(graph, parent));
      const internal = (node.dependsOn ?? []).filter((parent) => Object.hasOwn(graph, parent));
      return { name, internal, spec: this.#kernel.specOf({ ...node, dependsOn: external }, `graph.${name}.payload`) };
    });
    const ids = await this.#kernel.write(async (uow) => {
      const byName: Record<string, number> = {};
      for (const { name, internal, spec } of nodes) {
        const parents = [...spec.parents, ...internal.map((parent) => byName[parent]!)];
        byName[name] = (await this.#kernel.promises.create(uow, { ...spec, parents })).id;
      }
      return byName;
    });
    await this.#kernel.enqueued();
    return Object.fromEntries(Object.entries(ids).map(([name, id]) => [name, String(id)]));
  }

  async #insert(specs: NewPromiseSpec[]): Promise<number[]> {
    const ids = await this.#kernel.write(async (uow) => {
      const created: number[] = [];
      for (const spec of specs) created.push((await this.#kernel.promises.create(uow, spec)).id);
      return created;
    });
    await this.#kernel.enqueued();
    return ids;
  }

  // ---- lifecycle ----

  /**
   * Resumes every unfinished promise in the database and starts working: waiting promises
   * re-check their parents, pending ones are claimed, and claims held by a dead process are
   * recovered at once (a live process's expired lease when it expires).
   */
  async start(): Promise<StartSummary> {
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

  // ---- reading ----

  /** The promise with this id, or `undefined`. */
  async get(id: string): Promise<PromiseRecord | undefined> {
    const rowId = parseId(id);
    return rowId === undefined ? undefined : this.#kernel.record(rowId);
  }

  /**
   * Waits for the promise to finish: resolves its result, or rejects with
   * {@link PromiseFailedError} (its `error` says why), {@link NotFoundError} or, after
   * `timeout` ms, {@link TimeoutError}.
   */
  async result<R = unknown>(id: string, options: { timeout?: number } = {}): Promise<R> {
    const rowId = parseId(id);
    if (rowId === undefined) throw new NotFoundError(String(id));
    return (await this.#kernel.waitForResult(rowId, timeoutOption(options.timeout))) as R;
  }

  /** The ids of the promises that depend on this one (its `dependsOn` children), oldest first. */
  async dependentsOf(id: string): Promise<string[]> {
    const rowId = parseId(id);
    return rowId === undefined ? [] : (await this.#kernel.store.childrenOf(rowId)).map(String);
  }

  /** Promises, newest first. */
  async list(filter: ListFilter = {}): Promise<PromiseRecord[]> {
    if (filter.status !== undefined && !PROMISE_STATUSES.includes(filter.status)) {
      throw new InvalidOptionError('status', filter.status, PROMISE_STATUSES.join(' | '));
    }
    const limit = integerIn('limit', filter.limit ?? 100, 1, 10_000);
    const store = this.#kernel.store;
    const rows = await store.listPromises({ status: filter.status, type: filter.type, limit });
    const parents = await store.dependenciesOfMany(rows.map((row) => row.id));
    return rows.map((row) => toRecord(row, parents.get(row.id) ?? []));
  }

  /** Counts by status and type, dead letters, the oldest due promise's wait, and recent throughput. */
  async stats(): Promise<EngineStats> {
    return readStats(this.#kernel.store, this.#kernel.clock.now());
  }

  /** The dead-letter record: promises that failed for good. `engine.retry(id)` takes one out again. */
  readonly deadLetters = {
    /** Dead letters, newest first. */
    list: async (options: { limit?: number } = {}): Promise<DeadLetter[]> => {
      const limit = integerIn('limit', options.limit ?? 100, 1, 10_000);
      return (await this.#kernel.store.listDeadLetters(limit)).map(toDeadLetter);
    },
    /** Removes every dead-letter record (the promises themselves stay); returns how many. */
    clear: async (): Promise<{ removed: number }> => ({ removed: await this.#kernel.write(({ tx }) => Promise.resolve(tx.clearDeadLetters())) }),
  };

  /**
   * Removes finished promises (their results, edges and history) whose expiry passed, and, with
   * `olderThan`, every promise finished more than that many ms ago. Works in batches of
   * `batchSize` rows, one transaction each, so writers are never blocked for long.
   */
  cleanup(options: { olderThan?: number; batchSize?: number; onProgress?: (removed: number) => void } = {}): Promise<{ removed: number }> {
    const batchSize = integerIn('batchSize', options.batchSize ?? 1_000, 1, 100_000);
    const olderThan = options.olderThan === undefined ? undefined : integerIn('olderThan', options.olderThan, 0, Number.MAX_SAFE_INTEGER);
    return this.#kernel.cleanup({ olderThan, batchSize, onProgress: options.onProgress });
  }

  /**
   * A promise's history: when it was created, first started and finished (from its row) and
   * every exceptional transition (failed attempts, lease losses, cancellation, retries).
   */
  async history(id: string): Promise<HistoryLine[]> {
    const rowId = parseId(id);
    const history = rowId === undefined ? undefined : await readHistory(this.#kernel.store, rowId);
    if (!history) throw new NotFoundError(String(id));
    return history;
  }

  // ---- workflows ----
  // The workflow methods (workflow, startWorkflow, send, getWorkflow, …) are in EngineWorkflows,
  // which this class extends: with the steering controls they would not fit here.

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

  /** Sends a failed promise back to `pending` with its attempts reset. */
  async retry(id: string): Promise<void> {
    const rowId = parseId(id);
    if (rowId === undefined) throw new NotFoundError(String(id));
    await this.#kernel.retry(rowId);
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

function timeoutOption(timeout: number | undefined): number | undefined {
  return timeout === undefined ? undefined : integerIn('timeout', timeout, 0, MAX_TIMER_MS);
}
