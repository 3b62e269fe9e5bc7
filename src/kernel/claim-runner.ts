import PQueue from 'p-queue';
import { CancelledError, errorRecordOf, InvalidOptionError, PromisedError } from '../errors.js';
import { toJsonText } from '../json.js';
import type { ClaimedRow } from '../persistence/store.js';
import { retryDelayMs } from './backoff.js';
import type { KernelContext } from './context.js';
import { runHandler } from './run-handler.js';
import type { TaskContext, TaskDefinition } from './task-context.js';
import { stepOf, type ClaimRef, type ErrorRecord } from './transition-types.js';
import type { UnitOfWork } from './unit-of-work.js';

interface RunningClaim {
  claim: ClaimRef;
  task: TaskDefinition;
  controller: AbortController;
  /** Set when the claim was cancelled or taken over: its outcome must not be committed. */
  fencedOff: boolean;
  progressTimer?: NodeJS.Timeout;
  pendingProgress?: { current: number; total: number };
  lastProgressWrite: number;
}

type Outcome = { claim: ClaimRef; task: TaskDefinition } & ({ kind: 'succeed'; result: string | null } | { kind: 'fail'; error: ErrorRecord });

const PROGRESS_WRITE_INTERVAL_MS = 250;
const COMMIT_RETRY_MS = 1_000;
/** How often claims are checked against changes made elsewhere (a cancel from another process lands within this). */
const CLAIM_CHECK_INTERVAL_MS = 250;

/**
 * Runs claimed promises: each handler in a bounded, prioritised pool (p-queue), its outcome
 * committed through the promise machine with the claim's fencing token. Outcomes of handlers
 * that finish in the same event-loop turn commit in one transaction. Heartbeats renew every
 * lease this process holds in one statement and abort handlers whose claim was taken over.
 */
export class ClaimRunner {
  readonly #ctx: KernelContext;
  /** A slot was freed or work was committed: the scheduler may claim more. */
  readonly #onSettled: () => void;
  readonly #pool: PQueue;
  readonly #running = new Map<number, RunningClaim>();
  #outcomes: Outcome[] = [];
  #flush: Promise<void> | undefined;
  #lastClaimCheck = 0;
  #claimCheckQueued = false;

  constructor(ctx: KernelContext, onSettled: () => void) {
    this.#ctx = ctx;
    this.#onSettled = onSettled;
    this.#pool = new PQueue({ concurrency: ctx.options.concurrency });
  }

  /** Claims running or awaiting their commit: they occupy slots. */
  get size(): number {
    return this.#running.size;
  }

  has(id: number): boolean {
    return this.#running.has(id);
  }

  #entryOf(row: ClaimedRow): RunningClaim {
    const entry: RunningClaim = {
      claim: { id: row.id, type: row.type, leaseToken: row.lease_token, attempts: row.attempts, maxAttempts: row.max_attempts, step: stepOf(row) },
      task: this.#ctx.tasks.get(row.type)!,
      controller: new AbortController(),
      fencedOff: false,
      lastProgressWrite: 0,
    };
    this.#running.set(row.id, entry);
    return entry;
  }

  /** Runs a claim in the pool; its outcome joins the next batched commit. */
  start(row: ClaimedRow): void {
    const entry = this.#entryOf(row);
    void this.#pool.add(
      async () => {
        const outcome = await this.#attempt(entry, row.payload);
        if (entry.fencedOff) {
          this.#finish(entry);
          this.#onSettled();
          return;
        }
        this.#outcomes.push(outcome);
        this.#scheduleFlush();
      },
      { priority: row.priority },
    );
  }

  /** Runs a claim here and now and commits its outcome before returning (immediate mode). */
  async runInline(row: ClaimedRow): Promise<void> {
    const entry = this.#entryOf(row);
    try {
      const outcome = await this.#attempt(entry, row.payload);
      if (!entry.fencedOff) await this.#commit([outcome]);
    } finally {
      this.#finish(entry);
    }
  }

  /** Aborts a running claim's handler and makes sure its outcome is never committed. */
  fenceOff(id: number, reason: Error): void {
    const entry = this.#running.get(id);
    if (!entry) return;
    entry.fencedOff = true;
    entry.controller.abort(reason);
  }

  /** Runs the handler once and turns whatever happened into an outcome. Never throws. */
  async #attempt(entry: RunningClaim, payloadText: string): Promise<Outcome> {
    const { claim, task, controller } = entry;
    const log = this.#ctx.options.logger.child({ promiseId: claim.id, type: claim.type, attempt: claim.attempts });
    const ctx: TaskContext = {
      id: String(claim.id),
      type: claim.type,
      attempt: claim.attempts,
      maxAttempts: claim.maxAttempts,
      signal: controller.signal,
      key: `promise:${claim.id}`,
      logger: log,
      progress: (current, total) => this.#progress(entry, current, total),
    };
    try {
      const result = await runHandler(task, JSON.parse(payloadText), ctx, controller);
      const stored = result === undefined || !task.options.storeResult ? null : toJsonText(result, 'result');
      return { claim, task, kind: 'succeed', result: stored };
    } catch (thrown) {
      const error = errorRecordOf(thrown);
      if (!entry.fencedOff) log.warn({ code: error.code, err: thrown }, 'attempt failed');
      return { claim, task, kind: 'fail', error };
    }
  }

  #scheduleFlush(): void {
    if (this.#flush) return;
    // setImmediate: every handler that finished in this turn commits in the same transaction.
    this.#flush = new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.#flushOutcomes());
  }

  async #flushOutcomes(): Promise<void> {
    const batch = this.#outcomes;
    this.#outcomes = [];
    try {
      await this.#commit(batch);
      for (const outcome of batch) this.#finish(this.#running.get(outcome.claim.id));
    } catch (error) {
      // Nothing was committed; the claims are still ours (heartbeats keep the leases), so try again.
      this.#ctx.reportError(error, 'could not commit outcomes; retrying');
      this.#outcomes.unshift(...batch);
      await new Promise((resolve) => setTimeout(resolve, COMMIT_RETRY_MS));
    } finally {
      this.#flush = undefined;
      if (this.#outcomes.length > 0) this.#scheduleFlush();
      this.#onSettled();
    }
  }

  async #commit(batch: Outcome[]): Promise<void> {
    if (batch.length === 0) return;
    await this.#ctx.write(async (uow) => {
      for (const outcome of batch) {
        if (await this.#apply(uow, outcome)) continue;
        this.#ctx.options.logger.warn({ promiseId: outcome.claim.id, type: outcome.claim.type, attempt: outcome.claim.attempts }, 'outcome refused: the claim was taken over or cancelled');
      }
    });
  }

  #apply(uow: UnitOfWork, outcome: Outcome): Promise<boolean> {
    const { transitions } = this.#ctx;
    if (outcome.kind === 'succeed') return transitions.succeed(uow, outcome.claim, outcome.result);
    const retryAt = uow.now + retryDelayMs(outcome.task.options, outcome.claim.attempts);
    return transitions.fail(uow, outcome.claim, outcome.error, retryAt);
  }

  #finish(entry: RunningClaim | undefined): void {
    if (!entry) return;
    if (entry.progressTimer) clearTimeout(entry.progressTimer);
    this.#running.delete(entry.claim.id);
  }

  #progress(entry: RunningClaim, current: number, total: number): void {
    if (!Number.isFinite(current) || !Number.isFinite(total) || total < 0) {
      throw new InvalidOptionError('progress', { current, total }, 'finite numbers with total >= 0');
    }
    if (entry.fencedOff) return;
    this.#ctx.emitter.emit('progress', { id: String(entry.claim.id), type: entry.claim.type, current, total });
    entry.pendingProgress = { current, total };
    if (entry.progressTimer) return;
    const wait = Math.max(0, entry.lastProgressWrite + PROGRESS_WRITE_INTERVAL_MS - Date.now());
    entry.progressTimer = setTimeout(() => {
      entry.progressTimer = undefined;
      const progress = entry.pendingProgress;
      if (!progress || entry.fencedOff || !this.#running.has(entry.claim.id)) return;
      entry.lastProgressWrite = Date.now();
      this.#ctx
        .write(async ({ tx, now }) => tx.saveProgress(entry.claim.id, entry.claim.leaseToken, progress.current, progress.total, now))
        .catch((error: unknown) => this.#ctx.reportError(error, 'could not save progress'));
    }, wait);
  }

  /** Renews every lease this process holds; aborts the handlers whose claim was taken over. */
  async heartbeat(): Promise<void> {
    if (this.#running.size === 0) return;
    try {
      // Only claims already running now are judged by the renewal: on a store with concurrent
      // connections (PostgreSQL) a claim that commits while the renewal runs is not among the
      // rows it saw, yet is ours.
      const before = new Set(this.#running.values());
      const { owner, options } = this.#ctx;
      const held = await this.#ctx.write(async ({ tx, now }) => tx.renewLeases(owner, now + options.leaseMs, now));
      const tokens = new Map(held.map((row) => [row.id, row.lease_token]));
      for (const entry of this.#running.values()) {
        if (!before.has(entry) || tokens.get(entry.claim.id) === entry.claim.leaseToken || entry.fencedOff) continue;
        this.fenceOff(entry.claim.id, new PromisedError('LEASE_LOST', `promise ${entry.claim.id}: lease lost to another worker`));
      }
    } catch (error) {
      this.#ctx.reportError(error, 'heartbeat failed');
    }
  }

  /**
   * Another process changed the database: a claim running here may have been cancelled or
   * taken over there. Reads each running claim's row (no write) and stops those no longer ours,
   * so a cancel from another process reaches the handler within the change-check interval.
   */
  async checkClaims(): Promise<void> {
    // At most once per interval: with many processes every commit elsewhere is a change, and
    // each check reads every running claim.
    const now = Date.now();
    if (now - this.#lastClaimCheck < CLAIM_CHECK_INTERVAL_MS) {
      if (!this.#claimCheckQueued) {
        this.#claimCheckQueued = true;
        setTimeout(() => {
          this.#claimCheckQueued = false;
          void this.checkClaims().catch((error: unknown) => this.#ctx.reportError(error, 'could not check running claims'));
        }, CLAIM_CHECK_INTERVAL_MS).unref();
      }
      return;
    }
    this.#lastClaimCheck = now;
    for (const entry of [...this.#running.values()]) {
      if (entry.fencedOff) continue;
      const row = await this.#ctx.store.getPromise(entry.claim.id);
      if (row && row.status === 'in_progress' && row.lease_token === entry.claim.leaseToken) continue;
      const reason =
        row?.error_code === 'CANCELLED'
          ? new CancelledError(String(entry.claim.id))
          : new PromisedError('LEASE_LOST', `promise ${entry.claim.id}: its claim was taken over by another worker`);
      this.fenceOff(entry.claim.id, reason);
    }
  }

  /**
   * Graceful stop: waits up to `timeoutMs` for running handlers, commits their outcomes, then
   * hands the claims still running back (`RELEASE`, the attempt not counted) for another worker.
   */
  async drain(timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)));
    await Promise.race([this.#pool.onIdle(), timedOut]);
    clearTimeout(timer);
    while (this.#flush || this.#outcomes.length > 0) await (this.#flush ?? this.#flushOutcomes());
    const unfinished = [...this.#running.values()];
    if (unfinished.length === 0) return;
    for (const entry of unfinished) this.fenceOff(entry.claim.id, new PromisedError('ENGINE_STOPPED', 'the engine is stopping; this attempt will run again'));
    await this.#ctx.write(async (uow) => {
      for (const entry of unfinished) await this.#ctx.transitions.release(uow, entry.claim);
    });
    for (const entry of unfinished) this.#finish(entry);
    this.#ctx.options.logger.warn({ released: unfinished.length }, 'stop timed out; released running claims for another worker');
  }
}
