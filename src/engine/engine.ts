import { randomUUID } from 'node:crypto';
import os from 'node:os';
import type { Logger } from 'pino';
import {
  CancelledError,
  EngineStateError,
  InvalidOptionError,
  NotFoundError,
  PromiseFailedError,
  UnknownDependencyError,
  UnknownTaskTypeError,
} from '../errors.js';
import type { EngineHost } from './engine-host.js';
import { Inbox } from './inbox.js';
import { parseCron, PeriodicSchedules } from './periodic-schedules.js';
import type {
  EnqueueOptions,
  EnqueueItem,
  ListFilter,
  EngineStats,
  StartSummary,
  DeadLetter,
  HistoryLine,
  PeriodicOptions,
  PeriodicContext,
  InboxOptions,
} from './public-types.js';
import type { AnyStateMachine } from 'xstate';
import { WorkflowRuntime, type WorkflowEvent, type WorkflowOptions, type WorkflowRecord } from '../workflows/workflow-runtime.js';
import { ClaimRunner } from './claim-runner.js';
import { Scheduler } from './scheduler.js';
import { readHistory, readStats, toDeadLetter } from './reports.js';
import { ResultWaiters } from './result-waiters.js';

export type { EnqueueOptions, EnqueueItem, ListFilter, EngineStats, StartSummary, DeadLetter, HistoryLine } from './public-types.js';
import { toJsonText } from '../json.js';
import { PROMISE_STATUSES, type PromiseStatus } from '../machines/promise-machine.js';
import { promiseLaw } from '../machines/transition-table.js';
import type { ExpiredLease, Store, StoreTransaction } from '../persistence/store.js';
import { retryDelayMs } from './backoff.js';
import { EngineEmitter, type EngineEvents } from './events.js';
import { orderGraph, type GraphNode } from './graph.js';
import { DEFAULT_MAX_LEASE_LOSSES, integerIn, MAX_DELAY_MS, PRIORITY_RANGE, resolveTaskOptions, type ResolvedEngineOptions, type TaskOptions } from './options.js';
import { parseId, toRecord, type PromiseRecord } from './records.js';
import type { TaskContext, TaskDefinition, TaskHandler } from './task-context.js';
import { PromiseTransitions, stepOf, type AppliedTransition, type ClaimRef, type NewPromiseSpec, type TypePolicy } from './transitions.js';

const RECOVERY_BATCH = 500;
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * The engine: registers task types, stores promises, and runs them.
 * Create one with {@link createEngine}.
 */
export class Engine {
  readonly #store: Store;
  readonly #options: ResolvedEngineOptions;
  readonly #log: Logger;
  readonly #transitions: PromiseTransitions;
  readonly #periodics: PeriodicSchedules;
  readonly #workflows: WorkflowRuntime;
  readonly #inboxes = new Map<string, Inbox>();
  #cleanupTimer: NodeJS.Timeout | undefined;
  readonly #tasks = new Map<string, TaskDefinition>();
  readonly #emitter = new EngineEmitter();
  readonly #owner = `${os.hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  readonly #runner: ClaimRunner;
  readonly #scheduler: Scheduler;
  readonly #waiters = new ResultWaiters((id) => this.#settledResult(id), () => this.#watchExternalChanges());
  #phase: 'created' | 'started' | 'stopping' | 'stopped' = 'created';
  #heartbeatTimer: NodeJS.Timeout | undefined;
  #unsubscribeChanges: (() => void) | undefined;
  #immediateDrain: Promise<void> = Promise.resolve();

  /** @internal Use {@link createEngine}. */
  constructor(store: Store, options: ResolvedEngineOptions) {
    this.#store = store;
    this.#options = options;
    this.#log = options.logger;
    this.#emitter.on('error', () => undefined);
    this.#transitions = new PromiseTransitions(promiseLaw, {
      policyOf: (type) => this.#policyOf(type),
      followUp: (type, payload, now) => ({ ...this.#specOf({ type, payload }, 'payload'), runAt: now }),
      stepFinished: (tx, step, outcome, now) => this.#workflows.stepFinished(tx, step, outcome, now),
    });
    this.#workflows = new WorkflowRuntime(
      withLiveStarted(
        {
          ...this.#host(),
          store,
          registerTask: (type, handler, taskOptions) => void this.task(type, handler, taskOptions),
          background: (work, message) => void work().catch((error: unknown) => this.#backgroundError(error, message)),
          wantsWorkflowEvents: () => this.#emitter.listenerCount('workflow') > 0,
          emitWorkflow: (change) => this.#emitter.emit('workflow', change),
        },
        () => this.#phase === 'started',
      ),
    );
    this.#periodics = new PeriodicSchedules(this.#host());
    this.#runner = new ClaimRunner({
      store,
      clock: options.clock,
      log: options.logger,
      emitter: this.#emitter,
      transitions: this.#transitions,
      owner: this.#owner,
      leaseMs: options.leaseMs,
      concurrency: options.concurrency,
      taskOf: (type) => this.#tasks.get(type)!,
      write: (work) => this.#write(work),
      onSettled: () => this.#scheduler.wake(),
      backgroundError: (error, message) => this.#backgroundError(error, message),
    });
    this.#scheduler = new Scheduler({
      store,
      clock: options.clock,
      runner: this.#runner,
      owner: this.#owner,
      leaseMs: options.leaseMs,
      concurrency: options.concurrency,
      started: () => this.#phase === 'started',
      taskTypes: () => this.taskTypes,
      recoverExpiredLeases: () => this.#recoverExpiredLeases(),
      announce: (transitions, now) => this.#announce(transitions, now),
      wantsTransitions: () => this.#emitter.listenerCount('transition') > 0,
      backgroundError: (error, message) => this.#backgroundError(error, message),
    });
  }

  #policyOf(type: string): TypePolicy {
    const options = this.#tasks.get(type)?.options;
    return { resultTtl: options?.resultTtl ?? this.#options.resultTtl, onComplete: options?.onComplete ?? null, onFail: options?.onFail ?? null };
  }

  /** The narrow view of this engine that its parts (schedules, inboxes) get. */
  #host(): EngineHost {
    const engine = this;
    return {
      clock: this.#options.clock,
      log: this.#log,
      transitions: this.#transitions,
      get started() {
        return engine.#phase === 'started';
      },
      write: (work) => this.#write(work),
      specOf: (item, path) => this.#specOf(item, path),
    };
  }

  /** The store this engine writes to (for tools built on the engine). @internal */
  get store(): Store {
    return this.#store;
  }

  /** This process's lease owner id (`host:pid:nonce`). */
  get owner(): string {
    return this.#owner;
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
    if (typeof type !== 'string' || type.length === 0 || type.length > 200) throw new InvalidOptionError('type', type, 'a non-empty string of at most 200 characters');
    if (typeof handler !== 'function') throw new InvalidOptionError('handler', handler, 'a function (payload, ctx) => result');
    if (this.#tasks.has(type)) throw new EngineStateError('DUPLICATE_TASK', `task type "${type}" is already registered`);
    this.#tasks.set(type, { type, handler: handler as TaskHandler, options: resolveTaskOptions(options) });
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
    const inbox = new Inbox(this.#host(), name, catchUpWindow);
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
    return [...this.#tasks.keys()];
  }

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
    const spec = this.#specOf({ type, payload, ...options }, 'payload');
    const [id] = await this.#insert([spec]);
    return String(id);
  }

  /** Stores several independent promises in one transaction; all or none. Returns their ids in order. */
  async enqueueMany(items: EnqueueItem[]): Promise<string[]> {
    if (!Array.isArray(items)) throw new InvalidOptionError('items', items, 'an array of { type, payload, ...options }');
    const specs = items.map((item, index) => this.#specOf(item, `items[${index}].payload`));
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
    const specs = order.map((name) => {
      const node = graph[name]!;
      const external = (node.dependsOn ?? []).filter((parent) => !Object.hasOwn(graph, parent));
      return { name, node, spec: this.#specOf({ ...node, dependsOn: external }, `graph.${name}.payload`) };
    });
    const ids = await this.#write(async (tx, now) => {
      const byName: Record<string, number> = {};
      const created: number[] = [];
      const transitions: AppliedTransition[] = [];
      for (const { name, node, spec } of specs) {
        const internal = (node.dependsOn ?? []).filter((parent) => Object.hasOwn(graph, parent)).map((parent) => byName[parent]!);
        const result = await this.#transitions.create(tx, { ...spec, parents: [...spec.parents, ...internal] }, now);
        byName[name] = result.id;
        created.push(result.id);
        transitions.push(...result.transitions);
      }
      return { value: byName, transitions };
    });
    await this.#afterEnqueue();
    return Object.fromEntries(Object.entries(ids).map(([name, id]) => [name, String(id)]));
  }

  #specOf(item: EnqueueItem, payloadPath: string): NewPromiseSpec {
    if (item === null || typeof item !== 'object') throw new InvalidOptionError('item', item, 'an object { type, payload }');
    const task = this.#tasks.get(item.type);
    if (!task) throw new UnknownTaskTypeError(String(item.type), this.taskTypes);
    this.#assertFollowUpsKnown(task);
    const priority = item.priority === undefined ? task.options.priority : integerIn('priority', item.priority, ...PRIORITY_RANGE);
    const delay = integerIn('delay', item.delay ?? 0, 0, MAX_DELAY_MS);
    if (item.key !== undefined && (typeof item.key !== 'string' || item.key.length === 0 || item.key.length > 512)) {
      throw new InvalidOptionError('key', item.key, 'a non-empty string of at most 512 characters');
    }
    if (item.dependsOn !== undefined && !Array.isArray(item.dependsOn)) throw new InvalidOptionError('dependsOn', item.dependsOn, 'an array of promise ids');
    const parents = (item.dependsOn ?? []).map((parent) => {
      const id = parseId(parent);
      if (id === undefined) throw new UnknownDependencyError(String(parent));
      return id;
    });
    return {
      type: item.type,
      payload: toJsonText(item.payload, payloadPath),
      priority,
      maxAttempts: task.options.maxAttempts,
      runAt: this.#options.clock.now() + delay,
      key: item.key ?? null,
      parents: [...new Set(parents)],
    };
  }

  /** A completion or failure follow-up must name a registered type before anything is written. */
  #assertFollowUpsKnown(task: TaskDefinition): void {
    for (const followUp of [task.options.onComplete, task.options.onFail]) {
      if (followUp !== null && !this.#tasks.has(followUp)) throw new UnknownTaskTypeError(followUp, this.taskTypes);
    }
  }

  async #insert(specs: NewPromiseSpec[]): Promise<number[]> {
    const ids = await this.#write(async (tx, now) => {
      const created: number[] = [];
      const transitions: AppliedTransition[] = [];
      for (const spec of specs) {
        const result = await this.#transitions.create(tx, spec, now);
        created.push(result.id);
        transitions.push(...result.transitions);
      }
      return { value: created, transitions };
    });
    await this.#afterEnqueue();
    return ids;
  }

  async #afterEnqueue(): Promise<void> {
    if (this.#options.immediate) await this.#drainImmediately();
    else this.#scheduler.wake();
  }

  /**
   * Runs `work` in one transaction, then announces its transitions. Refused while stopped.
   * Announcing after the commit means no listener ever sees a change that was rolled back.
   */
  async #write<T>(work: (tx: StoreTransaction, now: number) => Promise<{ value: T; transitions: AppliedTransition[] }>): Promise<T> {
    if (this.#phase === 'stopped') throw new EngineStateError('ENGINE_STOPPED', 'the engine is stopped; create a new one');
    const now = this.#options.clock.now();
    // The transaction object that committed (a store may run the work again) goes to the
    // workflow runtime, which answers only the workflow changes that transaction made.
    let committed: StoreTransaction | undefined;
    const { value, transitions } = await this.#store.transaction((tx) => {
      committed = tx;
      return work(tx, now);
    });
    this.#workflows.answer(committed!);
    this.#announce(transitions, now);
    return value;
  }

  /**
   * Resumes every unfinished promise in the database and starts working: waiting promises
   * re-check their parents, pending ones are claimed, and claims held by a dead process are
   * recovered at once (a live process's expired lease when it expires).
   */
  async start(): Promise<StartSummary> {
    if (this.#phase === 'started') throw new EngineStateError('ENGINE_STOPPED', 'the engine is already started');
    if (this.#phase !== 'created') throw new EngineStateError('ENGINE_STOPPED', 'the engine is stopped; create a new one');
    for (const task of this.#tasks.values()) this.#assertFollowUpsKnown(task);
    await this.#store.startMaintenance();
    const summary = await this.#rehydrate();
    for (const inbox of this.#inboxes.values()) summary.skippedMessages += await inbox.skipStale();
    this.#phase = 'started';
    summary.workflows = await this.#workflows.resume();
    await this.#periodics.start();
    this.#watchExternalChanges();
    if (this.#options.cleanupIntervalMs > 0) {
      this.#cleanupTimer = setInterval(() => {
        this.cleanup().catch((error: unknown) => this.#backgroundError(error, 'automatic cleanup failed'));
      }, this.#options.cleanupIntervalMs);
      this.#cleanupTimer.unref();
    }
    // Not unref'd: like a server, a started engine keeps its process alive until stop().
    this.#heartbeatTimer = setInterval(() => void this.#runner.heartbeat(), this.#options.heartbeatMs);
    this.#log.info({ ...summary.resumed, recovered: summary.recovered, owner: this.#owner }, 'engine started');
    this.#scheduler.wake();
    return summary;
  }

  /** Work and results committed by other processes reach this one through the store's change signal. */
  #watchExternalChanges(): void {
    this.#unsubscribeChanges ??= this.#store.onExternalChange(() => {
      this.#scheduler.wake();
      if (this.#runner.size > 0) void this.#runner.checkClaims().catch((error: unknown) => this.#backgroundError(error, 'could not check running claims'));
      this.#waiters.settleAll();
      this.#workflows.changedElsewhere();
    });
  }

  async #rehydrate(): Promise<StartSummary> {
    const resumed = { waiting: 0, pending: 0, in_progress: 0, total: 0 };
    const damaged: Array<{ id: number; status: string }> = [];
    const owners = new Set<string>();
    for await (const row of this.#store.unfinished()) {
      const status = row.status as 'waiting' | 'pending' | 'in_progress';
      resumed[status]++;
      resumed.total++;
      // The stored snapshot must restore the machine into the row's status; the row is the truth.
      if (row.snapshot !== promiseLaw.snapshotText(status)) damaged.push({ id: row.id, status });
      if (row.lease_owner) owners.add(row.lease_owner);
    }
    const deadOwners = [...owners].filter((owner) => isDeadLocalOwner(owner));
    // The count is returned, not accumulated in the closure: a store may run the work again
    // (PostgreSQL retries a transaction that lost a deadlock).
    let recovered = await this.#write(async (tx, now) => {
      for (const { id, status } of damaged) await tx.repairSnapshot(id, status, promiseLaw.snapshotText(status as PromiseStatus));
      const transitions = await this.#transitions.settleWaiting(tx, now);
      let count = 0;
      for (const owner of deadOwners) {
        for (const lease of await tx.leasesOwnedBy(owner)) {
          const applied = await this.#loseLease(tx, lease, now);
          if (!applied) continue;
          count++;
          transitions.push(...applied);
        }
      }
      return { value: count, transitions };
    });
    recovered += await this.#recoverExpiredLeases();
    for (const { id } of damaged) this.#log.warn({ promiseId: id }, 'snapshot did not match its status; rewritten from the row');
    return { resumed, recovered, repairedSnapshots: damaged.length, skippedMessages: 0, workflows: { running: 0, versionMismatches: 0 } };
  }

  async #loseLease(tx: StoreTransaction, lease: ExpiredLease, now: number) {
    const task = this.#tasks.get(lease.type);
    const claim: ClaimRef = { step: stepOf(lease), id: lease.id, type: lease.type, leaseToken: lease.lease_token, attempts: lease.attempts, maxAttempts: lease.max_attempts };
    const retryAt = now + (task ? retryDelayMs(task.options, lease.attempts) : 0);
    const maxLosses = task?.options.maxLeaseLosses ?? DEFAULT_MAX_LEASE_LOSSES;
    return this.#transitions.loseLease(tx, claim, lease.lease_losses + 1, maxLosses, retryAt, now);
  }

  async #recoverExpiredLeases(): Promise<number> {
    let recovered = 0;
    for (;;) {
      const count = await this.#write(async (tx, now) => {
        const expired = await tx.expiredLeases(now, RECOVERY_BATCH);
        const transitions: AppliedTransition[] = [];
        let applied = 0;
        for (const lease of expired) {
          if (this.#runner.has(lease.id)) continue;
          const lost = await this.#loseLease(tx, lease, now);
          if (!lost) continue;
          applied++;
          transitions.push(...lost);
        }
        return { value: { seen: expired.length, applied }, transitions };
      });
      recovered += count.applied;
      // Stop when the batch was short, or when it held only this process's own live claims.
      if (count.seen < RECOVERY_BATCH || count.applied === 0) return recovered;
    }
  }

  // ---- immediate mode ----

  #drainImmediately(): Promise<void> {
    const run = this.#immediateDrain.then(async () => {
      const types = this.taskTypes;
      while (this.#phase !== 'stopping' && this.#phase !== 'stopped') {
        // Delays are not waited for: "immediate" means run everything runnable now.
        const [row] = await this.#scheduler.claim(1, this.#options.clock.now(), Number.MAX_SAFE_INTEGER, types);
        if (!row) return;
        await this.#runner.runInline(row);
      }
    });
    this.#immediateDrain = run.catch(() => undefined);
    return run;
  }

  // ---- reading ----

  /** The promise with this id, or `undefined`. */
  async get(id: string): Promise<PromiseRecord | undefined> {
    const rowId = parseId(id);
    if (rowId === undefined) return undefined;
    const row = await this.#store.getPromise(rowId);
    if (!row) return undefined;
    return toRecord(row, await this.#store.dependenciesOf(rowId));
  }

  /**
   * Waits for the promise to finish: resolves its result, or rejects with
   * {@link PromiseFailedError} (its `error` says why), {@link NotFoundError} or, after
   * `timeout` ms, {@link TimeoutError}.
   */
  async result<R = unknown>(id: string, options: { timeout?: number } = {}): Promise<R> {
    const rowId = parseId(id);
    if (rowId === undefined) throw new NotFoundError(String(id));
    const timeout = options.timeout === undefined ? undefined : integerIn('timeout', options.timeout, 0, MAX_TIMER_MS);
    return (await this.#waiters.wait(rowId, timeout)) as R;
  }

  /** `{ value }` when finished successfully; throws when failed or missing; `undefined` while unfinished. */
  async #settledResult(rowId: number): Promise<{ value: unknown } | undefined> {
    const record = await this.get(String(rowId));
    if (!record) throw new NotFoundError(String(rowId));
    if (record.status === 'completed') return { value: record.result };
    if (record.status === 'failed') throw new PromiseFailedError(record.id, record.error ?? { code: 'UNKNOWN', message: 'failed' });
    return undefined;
  }

  /** Promises, newest first. */
  async list(filter: ListFilter = {}): Promise<PromiseRecord[]> {
    if (filter.status !== undefined && !PROMISE_STATUSES.includes(filter.status)) {
      throw new InvalidOptionError('status', filter.status, PROMISE_STATUSES.join(' | '));
    }
    const limit = integerIn('limit', filter.limit ?? 100, 1, 10_000);
    const rows = await this.#store.listPromises({ status: filter.status, type: filter.type, limit });
    return Promise.all(rows.map(async (row) => toRecord(row, await this.#store.dependenciesOf(row.id))));
  }

  /** Counts by status and type, dead letters, the oldest due promise's wait, and recent throughput. */
  async stats(): Promise<EngineStats> {
    return readStats(this.#store, this.#options.clock.now());
  }

  /** The dead-letter record: promises that failed for good. `engine.retry(id)` takes one out again. */
  readonly deadLetters = {
    /** Dead letters, newest first. */
    list: async (options: { limit?: number } = {}): Promise<DeadLetter[]> => {
      const limit = integerIn('limit', options.limit ?? 100, 1, 10_000);
      return (await this.#store.listDeadLetters(limit)).map(toDeadLetter);
    },
    /** Removes every dead-letter record (the promises themselves stay); returns how many. */
    clear: async (): Promise<{ removed: number }> => ({
      removed: await this.#write(async (tx) => ({ value: await tx.clearDeadLetters(), transitions: [] })),
    }),
  };

  /**
   * Removes finished promises (their results, edges and history) whose expiry passed, and, with
   * `olderThan`, every promise finished more than that many ms ago. Works in batches of
   * `batchSize` rows, one transaction each, so writers are never blocked for long.
   */
  async cleanup(options: { olderThan?: number; batchSize?: number; onProgress?: (removed: number) => void } = {}): Promise<{ removed: number }> {
    const batchSize = integerIn('batchSize', options.batchSize ?? 1_000, 1, 100_000);
    const olderThan = options.olderThan === undefined ? undefined : integerIn('olderThan', options.olderThan, 0, Number.MAX_SAFE_INTEGER);
    let removed = 0;
    const sweep = async (remove: (tx: StoreTransaction, now: number) => Promise<number> | number) => {
      for (;;) {
        const count = await this.#write(async (tx, now) => ({ value: await remove(tx, now), transitions: [] }));
        removed += count;
        options.onProgress?.(removed);
        if (count < batchSize) return;
        await new Promise((resolve) => setImmediate(resolve));
      }
    };
    await sweep((tx, now) => tx.deleteExpired(now, batchSize));
    if (olderThan !== undefined) await sweep((tx, now) => tx.deleteFinishedBefore(now - olderThan, batchSize));
    if (removed > 0) this.#log.info({ removed }, 'cleanup removed finished promises');
    return { removed };
  }

  /**
   * A promise's history: when it was created, first started and finished (from its row) and
   * every exceptional transition (failed attempts, lease losses, cancellation, retries).
   */
  async history(id: string): Promise<HistoryLine[]> {
    const rowId = parseId(id);
    const history = rowId === undefined ? undefined : await readHistory(this.#store, rowId);
    if (!history) throw new NotFoundError(String(id));
    return history;
  }

  // ---- workflows ----

  /**
   * Registers a workflow: an XState v5 machine whose invoked actors (named in `setup({ actors })`)
   * run as durable steps. Each entry of `steps` is the handler `(input, ctx) => output` of the
   * actor of that name, or `{ workflow: name }` to run another workflow as a child.
   *
   * @example
   * ```ts
   * engine.workflow('ci', machine, { steps: { setupEnv: async (input) => ({ ok: true }), runTests: async () => 'green' } });
   * ```
   */
  workflow(name: string, machine: AnyStateMachine, options: WorkflowOptions): this {
    this.#workflows.define(name, machine, options);
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

  /** Starts a workflow; returns its id once its first state and first steps are on disk. */
  startWorkflow(name: string, input?: unknown): Promise<string> {
    return this.#workflows.start(name, input ?? {});
  }

  /** Sends an external event to a running workflow; it is stored, then applied, in one transaction. */
  send(id: string, event: WorkflowEvent): Promise<void> {
    return this.#workflows.send(id, event);
  }

  /** The workflow with this id (state value, context, steps), or `undefined`. */
  getWorkflow(id: string): Promise<WorkflowRecord | undefined> {
    return this.#workflows.get(id);
  }

  /** Workflows (without their steps), newest first. */
  listWorkflows(filter: { status?: WorkflowRecord['status']; name?: string; limit?: number } = {}): Promise<Array<Omit<WorkflowRecord, 'steps'>>> {
    return this.#workflows.list(filter);
  }

  /** Waits for the workflow's output (its machine's final state); rejects with `PromiseFailedError` if it failed. */
  async workflowResult<R = unknown>(id: string, options: { timeout?: number } = {}): Promise<R> {
    const timeout = options.timeout === undefined ? undefined : integerIn('timeout', options.timeout, 0, MAX_TIMER_MS);
    return (await this.#workflows.result(id, timeout)) as R;
  }

  // ---- control ----

  /**
   * Cancels a waiting, pending or running promise: it fails with `CANCELLED`, a running handler's
   * `ctx.signal` aborts, and its dependents fail with `DEPENDENCY_FAILED`.
   */
  async cancel(id: string): Promise<void> {
    const rowId = parseId(id);
    if (rowId === undefined) throw new NotFoundError(String(id));
    await this.#write(async (tx, now) => ({ value: undefined, transitions: await this.#transitions.cancel(tx, rowId, now) }));
    this.#runner.fenceOff(rowId, new CancelledError(String(rowId)));
  }

  /** Sends a failed promise back to `pending` with its attempts reset. */
  async retry(id: string): Promise<void> {
    const rowId = parseId(id);
    if (rowId === undefined) throw new NotFoundError(String(id));
    await this.#write(async (tx, now) => ({ value: undefined, transitions: await this.#transitions.retry(tx, rowId, now) }));
    await this.#afterEnqueue();
  }

  /** Listens to engine events (`completed`, `failed`, `retrying`, `progress`, `transition`, `error`). */
  on<E extends keyof EngineEvents>(event: E, listener: (...args: EngineEvents[E]) => void): this {
    this.#emitter.on(event, listener as never);
    return this;
  }

  /** Removes a listener added with {@link Engine.on}. */
  off<E extends keyof EngineEvents>(event: E, listener: (...args: EngineEvents[E]) => void): this {
    this.#emitter.off(event, listener as never);
    return this;
  }

  /**
   * Stops gracefully: claims nothing more, waits up to `stopTimeoutMs` for running handlers and
   * commits their outcomes, hands back the claims still running (without counting the attempt),
   * and closes the database.
   */
  async stop(): Promise<void> {
    if (this.#phase === 'stopped' || this.#phase === 'stopping') return;
    const wasStarted = this.#phase === 'started';
    this.#phase = 'stopping';
    this.#scheduler.stop();
    if (this.#cleanupTimer) clearInterval(this.#cleanupTimer);
    this.#periodics.stop();
    this.#workflows.stop();
    this.#unsubscribeChanges?.();
    if (wasStarted) await this.#runner.drain(this.#options.stopTimeoutMs);
    if (this.#heartbeatTimer) clearInterval(this.#heartbeatTimer);
    await this.#immediateDrain;
    this.#waiters.rejectAll((rowId) => new EngineStateError('ENGINE_STOPPED', `engine stopped while waiting for promise ${rowId}`));
    this.#phase = 'stopped';
    await this.#store.close();
    this.#log.info({ owner: this.#owner }, 'engine stopped');
  }

  // ---- events ----

  #announce(transitions: AppliedTransition[], now: number): void {
    if (transitions.length === 0) return;
    const at = new Date(now);
    const wantsTransitions = this.#emitter.listenerCount('transition') > 0;
    if (transitions.some((t) => t.type.startsWith('workflow:'))) this.#workflows.changed();
    const wantsRecords = this.#emitter.listenerCount('completed') + this.#emitter.listenerCount('failed') + this.#emitter.listenerCount('retrying') > 0;
    for (const t of transitions) {
      if (wantsTransitions) {
        this.#emitter.emit('transition', { id: String(t.id), type: t.type, event: t.event, from: t.from, to: t.to, attempt: 0, at });
      }
      const finished = t.to === 'completed' || t.to === 'failed';
      const retrying = t.to === 'pending' && (t.event === 'FAIL' || t.event === 'LEASE_LOST');
      if (finished) void this.#waiters.settle(t.id);
      if (wantsRecords && (finished || retrying)) void this.#emitRecord(t.id, t.to === 'completed' ? 'completed' : retrying ? 'retrying' : 'failed');
    }
    this.#scheduler.wake();
  }

  async #emitRecord(id: number, event: 'completed' | 'failed' | 'retrying'): Promise<void> {
    try {
      const record = await this.get(String(id));
      if (record) this.#emitter.emit(event, record);
    } catch (error) {
      this.#backgroundError(error, `could not read promise ${id} for its ${event} event`);
    }
  }

  #backgroundError(thrown: unknown, message: string): void {
    const error = thrown instanceof Error ? thrown : new Error(String(thrown));
    this.#log.error({ err: error }, message);
    this.#emitter.emit('error', error);
  }
}

/** A copy of `host` whose `started` stays live (spreading an object copies a getter's value once). */
function withLiveStarted<T extends { started: boolean }>(host: T, started: () => boolean): T {
  return Object.defineProperty({ ...host }, 'started', { get: started, enumerable: true });
}

/** True when `owner` names a process on this host that no longer exists. */
function isDeadLocalOwner(owner: string): boolean {
  const [host, pidText] = owner.split(':');
  const pid = Number(pidText);
  if (host !== os.hostname() || !Number.isInteger(pid) || pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}
