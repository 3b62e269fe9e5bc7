import { AsyncLocalStorage } from 'node:async_hooks';
import os from 'node:os';
import type { Logger } from 'pino';
import { CancelledError, EngineStateError, NotFoundError, PromiseFailedError } from '../errors.js';
import { promiseLaw } from '../machines/transition-table.js';
import type { Store } from '../persistence/store.js';
import { ClaimRunner } from './claim-runner.js';
import { removeFinished, type CleanupRequest } from './cleanup.js';
import type { KernelContext } from './context.js';
import type { KernelEmitter, ResumeSummary } from './events.js';
import type { Clock, ResolvedEngineOptions, TaskOptions } from './options.js';
import type { ClockHook, KernelPort, PromiseItem } from './port.js';
import { toRecord, type PromiseRecord } from './records.js';
import { Recovery } from './recovery.js';
import { ResultWaiters } from './result-waiters.js';
import { Scheduler } from './scheduler.js';
import type { TaskHandler } from './task-context.js';
import { detachedFromTrace } from './tracing.js';
import { TaskRegistry } from './task-registry.js';
import type { SettleHook } from './settle-hooks.js';
import type { AppliedTransition, NewPromiseSpec } from './transition-types.js';
import { PromiseTransitions } from './transitions.js';
import { UnitOfWork, type Work } from './unit-of-work.js';

type Phase = 'created' | 'started' | 'stopping' | 'stopped';

/**
 * The promise kernel: the task registry, the one write path, claims and leases, transitions,
 * timers, recovery and rehydration. It knows nothing of what is built on it (workflows, the
 * inbox, periodic schedules, inspection): those use its {@link KernelPort}.
 */
export class Kernel implements KernelPort {
  readonly store: Store;
  readonly clock: Clock;
  readonly log: Logger;
  readonly tasks: TaskRegistry;
  readonly promises: PromiseTransitions;
  /** This process's lease owner id (`host:pid:nonce`). */
  // The nonce tells apart two engines of one process, and a process from an earlier one that had
  // the same pid; it needs no cryptographic strength (and node:crypto costs a command's start-up).
  readonly owner = `${os.hostname()}:${process.pid}:${Math.floor(Math.random() * 0x1_0000_0000).toString(16).padStart(8, '0')}`;
  readonly #options: ResolvedEngineOptions;
  readonly #emitter: KernelEmitter;
  readonly #settleHooks: SettleHook[] = [];
  readonly #externalListeners = new Set<() => void>();
  readonly #clockHooks: ClockHook[] = [];
  readonly #runner: ClaimRunner;
  readonly #scheduler: Scheduler;
  readonly #recovery: Recovery;
  readonly #waiters = new ResultWaiters((id) => this.#settledResult(id), () => this.#watchExternalChanges());
  #phase: Phase = 'created';
  #wasStarted = false;
  #heartbeatTimer: NodeJS.Timeout | undefined;
  #cleanupTimer: NodeJS.Timeout | undefined;
  #unsubscribeChanges: (() => void) | undefined;
  #immediateDrain: Promise<void> = Promise.resolve();
  /** Set inside an immediate-mode drain: work stored there is run by that drain, not waited for. */
  readonly #draining = new AsyncLocalStorage<true>();

  constructor(store: Store, options: ResolvedEngineOptions, emitter: KernelEmitter) {
    this.store = store;
    this.clock = options.clock;
    this.log = options.logger;
    this.#options = options;
    this.#emitter = emitter;
    this.tasks = new TaskRegistry(options.clock, options.resultTtl);
    this.promises = new PromiseTransitions(promiseLaw, {
      policyOf: (type) => this.tasks.policyOf(type),
      followUp: (type, payload, now) => ({ ...this.tasks.specOf({ type, payload }, 'payload'), runAt: now }),
      settleHooks: this.#settleHooks,
    });
    const ctx: KernelContext = {
      store,
      options,
      owner: this.owner,
      tasks: this.tasks,
      transitions: this.promises,
      emitter,
      write: (work) => this.write(work),
      reportError: (error, message) => this.reportError(error, message),
    };
    this.#runner = new ClaimRunner(ctx, () => this.#scheduler.wake());
    this.#recovery = new Recovery(ctx, this.#runner);
    this.#scheduler = new Scheduler(ctx, this.#runner, () => this.#phase === 'started', () => this.#recovery.recoverExpiredLeases());
  }

  get started(): boolean {
    return this.#phase === 'started';
  }

  // ---- the port ----

  registerTask(type: string, handler: TaskHandler, options?: TaskOptions): void {
    this.tasks.register(type, handler, options);
  }

  specOf(item: PromiseItem, payloadPath: string): NewPromiseSpec {
    return this.tasks.specOf(item, payloadPath);
  }

  onSettled(hook: SettleHook): void {
    this.#settleHooks.push(hook);
  }

  onExternalChange(listener: () => void): () => void {
    this.#externalListeners.add(listener);
    return () => this.#externalListeners.delete(listener);
  }

  onClockMoved(hook: ClockHook): void {
    this.#clockHooks.push(hook);
  }

  /** The earliest time anything of this engine comes due after now: a delayed promise, a lease expiry, a layer's timer. */
  async nextDueAt(): Promise<number | null> {
    const now = this.clock.now();
    const lease = await this.store.nextLeaseExpiry();
    const expiring = this.tasks.types.filter((type) => this.tasks.get(type)!.options.expireIn !== null);
    const deadline = await this.store.nextStartBy(expiring);
    // A batch falls due when its oldest has waited `waitMs`, and that is not a run-at: the
    // claim pass computes it and arms the engine's own timer; a moved clock asks the same pass.
    const candidates = [await this.store.nextRunAt(this.tasks.types, now), lease === null ? null : lease + 1, deadline === null ? null : deadline + 1];
    for (const hook of this.#clockHooks) candidates.push(await hook.nextDueAt());
    const due = candidates.filter((at): at is number => at !== null);
    return due.length === 0 ? null : Math.min(...due);
  }

  /**
   * The clock moved forward (a virtual clock in tests): what came due is fired now, in this
   * order: the layers' timers (workflow `after`, cron runs), leases, then a claim pass.
   */
  async clockMoved(): Promise<void> {
    for (const hook of this.#clockHooks) await hook.fireDue();
    if (this.started) await this.#recovery.recoverExpiredLeases();
    this.#scheduler.wake();
  }

  /**
   * Resolves when nothing of this engine is runnable or running: no handler runs, every outcome
   * is committed, and a claim pass finds nothing (work held by a limit, a pause or a delay is not
   * runnable). Before `start()` (or in immediate mode), when the last drain has finished.
   */
  async idle(): Promise<void> {
    for (;;) {
      await this.#immediateDrain;
      await this.#runner.settled();
      if (!this.started) return;
      const claimed = await this.#scheduler.passNow();
      if (claimed === 0 && this.#runner.size === 0) return;
    }
  }

  abortRunning(id: number, reason: Error): void {
    this.#runner.fenceOff(id, reason);
  }

  background(work: () => Promise<unknown>, message: string): void {
    // Detached: a timer armed here must not make the span active now the parent of what it fires later.
    detachedFromTrace(work)().catch((error: unknown) => this.reportError(error, message));
  }

  /**
   * The one write path. Each transaction attempt gets its own {@link UnitOfWork}; the store runs
   * the attempts one after another, so the last one is the one that committed: only its
   * transitions are announced and only its effects run. Announcing after the commit means no
   * listener ever sees a change that was rolled back.
   */
  async write<T>(work: Work<T>): Promise<T> {
    if (this.#phase === 'stopped') throw new EngineStateError('ENGINE_STOPPED', 'the engine is stopped; create a new one');
    const now = this.clock.now();
    let committed: UnitOfWork | undefined;
    const value = await this.store.transaction((tx) => {
      committed = new UnitOfWork(tx, now);
      return work(committed);
    });
    committed!.runEffects((error) => this.reportError(error, 'an after-commit effect failed'));
    const { transitions } = committed!;
    if (transitions.length > 0) this.#announce(transitions, now);
    // Immediate mode: whatever this commit made runnable (an enqueue, an inbox message, a
    // workflow's first steps, a released child) runs before the write returns.
    if (this.#options.immediate && transitions.some((t) => t.to === 'pending')) await this.#drainImmediately();
    return value;
  }

  reportError(thrown: unknown, message: string): void {
    const error = thrown instanceof Error ? thrown : new Error(String(thrown));
    this.log.error({ err: error }, message);
    this.#emitter.emit('error', error);
  }

  // ---- lifecycle: resume, begin, stop ----

  /** Resumes every unfinished promise in the database; nothing is claimed until {@link Kernel.begin}. */
  async resume(): Promise<ResumeSummary> {
    if (this.#phase === 'started') throw new EngineStateError('ENGINE_STOPPED', 'the engine is already started');
    if (this.#phase !== 'created') throw new EngineStateError('ENGINE_STOPPED', 'the engine is stopped; create a new one');
    this.tasks.assertAllFollowUpsKnown();
    await this.store.startMaintenance();
    return this.#recovery.rehydrate();
  }

  /** Starts working: heartbeats, automatic cleanup, other processes' changes. Call {@link Kernel.wake} once the layers above have resumed. */
  begin(): void {
    this.#phase = 'started';
    this.#wasStarted = true;
    this.#watchExternalChanges();
    if (this.#options.cleanupIntervalMs > 0) {
      this.#cleanupTimer = setInterval(() => {
        this.cleanup({ batchSize: 1_000 }).catch((error: unknown) => this.reportError(error, 'automatic cleanup failed'));
      }, this.#options.cleanupIntervalMs);
      this.#cleanupTimer.unref();
    }
    this.#runner.resetHeartbeatClock();
    // Not unref'd: like a server, a started engine keeps its process alive until stop().
    this.#heartbeatTimer = setInterval(() => void this.#runner.heartbeat(), this.#options.heartbeatMs);
    void this.#scheduler.watchLeases();
  }

  /** Asks for a claim pass: something may have become runnable. */
  wake(): void {
    this.#scheduler.wake();
  }

  /** Stops claiming and watching; returns false when a stop already began. The database stays open until {@link Kernel.close}. */
  stopClaiming(): boolean {
    if (this.#phase === 'stopped' || this.#phase === 'stopping') return false;
    this.#phase = 'stopping';
    this.#scheduler.stop();
    if (this.#cleanupTimer) clearInterval(this.#cleanupTimer);
    this.#unsubscribeChanges?.();
    return true;
  }

  /**
   * Waits up to `stopTimeoutMs` for running handlers and commits their outcomes, hands back the
   * claims still running, answers waiters with `ENGINE_STOPPED`, and closes the database.
   */
  async close(): Promise<void> {
    if (this.#wasStarted) await this.#runner.drain(this.#options.stopTimeoutMs);
    if (this.#heartbeatTimer) clearInterval(this.#heartbeatTimer);
    await this.#immediateDrain;
    this.#waiters.rejectAll((rowId) => new EngineStateError('ENGINE_STOPPED', `engine stopped while waiting for promise ${rowId}`));
    this.#phase = 'stopped';
    await this.store.close();
    this.log.info({ owner: this.owner }, 'engine stopped');
  }

  /** Work and results committed by other processes reach this one through the store's change signal. */
  #watchExternalChanges(): void {
    this.#unsubscribeChanges ??= this.store.onExternalChange(() => {
      this.#scheduler.wake();
      if (this.#runner.size > 0) this.background(() => this.#runner.checkClaims(), 'could not check running claims');
      this.#waiters.settleAll();
      for (const listener of this.#externalListeners) listener();
    });
  }

  // ---- what the engine's public API needs ----

  /** After promises were stored: wake the scheduler (immediate mode ran them in the write already). */
  async enqueued(): Promise<void> {
    if (!this.#options.immediate) this.#scheduler.wake();
  }

  /**
   * Immediate mode: runs everything runnable, one promise at a time, until nothing is left. A
   * handler that stores more work (enqueues, fans out, starts a workflow) is inside the drain:
   * its writes return at once and the drain runs that work after the handler returns, so
   * nesting never waits on itself. Delays are not waited for.
   */
  #drainImmediately(): Promise<void> {
    if (this.#draining.getStore()) return Promise.resolve();
    const run = this.#immediateDrain.then(() =>
      this.#draining.run(true, async () => {
        const types = this.tasks.types;
        while (this.#phase !== 'stopping' && this.#phase !== 'stopped') {
          const [run] = await this.#scheduler.claim(1, types, { ignoreDelays: true });
          if (!run) return;
          await this.#runner.runInline(run);
        }
      }),
    );
    this.#immediateDrain = run.catch(() => undefined);
    return run;
  }

  /** Cancels a promise; a handler running it here has its signal aborted and its outcome refused. */
  async cancel(id: number): Promise<void> {
    await this.write((uow) => this.promises.cancel(uow, id));
    this.abortRunning(id, new CancelledError(String(id)));
  }

  /** `payload` (JSON text, validated by the caller) replaces the row's in the same transaction. */
  async retry(id: number, payload?: string): Promise<void> {
    await this.write((uow) => this.promises.retry(uow, id, payload));
    await this.enqueued();
  }

  cleanup(request: CleanupRequest): Promise<{ removed: number }> {
    return removeFinished((work) => this.write(work), this.log, request);
  }

  /** The promise with this id as the API shows it, or `undefined`. */
  async record(id: number): Promise<PromiseRecord | undefined> {
    const row = await this.store.getPromise(id);
    if (!row) return undefined;
    return toRecord(row, await this.store.dependenciesOf(id));
  }

  /** Waits for promise `id` to finish: its result, or a rejection with why it failed. */
  waitForResult(id: number, timeout: number | undefined): Promise<unknown> {
    return this.#waiters.wait(id, timeout);
  }

  /** `{ value }` when finished successfully; throws when failed or missing; `undefined` while unfinished. */
  async #settledResult(id: number): Promise<{ value: unknown } | undefined> {
    const record = await this.record(id);
    if (!record) throw new NotFoundError(String(id));
    if (record.status === 'completed') return { value: record.result };
    if (record.status === 'failed') throw new PromiseFailedError(record.id, record.error ?? { code: 'UNKNOWN', message: 'failed' });
    return undefined;
  }

  // ---- announcing, after each commit ----

  #announce(transitions: AppliedTransition[], now: number): void {
    const emitter = this.#emitter;
    const at = new Date(now);
    const wantsTransitions = emitter.listenerCount('transition') > 0;
    // A record event costs a read of the row: read only for the events someone listens to.
    const wants = { completed: emitter.listenerCount('completed') > 0, failed: emitter.listenerCount('failed') > 0, retrying: emitter.listenerCount('retrying') > 0 };
    for (const t of transitions) {
      if (wantsTransitions) emitter.emit('transition', { id: String(t.id), type: t.type, event: t.event, from: t.from, to: t.to, attempt: 0, at });
      const finished = t.to === 'completed' || t.to === 'failed';
      const retrying = t.to === 'pending' && (t.event === 'FAIL' || t.event === 'LEASE_LOST');
      if (finished) void this.#waiters.settle(t.id);
      const event = t.to === 'completed' ? 'completed' : retrying ? 'retrying' : t.to === 'failed' ? 'failed' : undefined;
      if (event && wants[event]) void this.#emitRecord(t.id, event);
    }
    this.#scheduler.wake();
  }

  async #emitRecord(id: number, event: 'completed' | 'failed' | 'retrying'): Promise<void> {
    try {
      const record = await this.record(id);
      if (record) this.#emitter.emit(event, record);
    } catch (error) {
      this.reportError(error, `could not read promise ${id} for its ${event} event`);
    }
  }
}
