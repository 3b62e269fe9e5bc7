import PQueue from 'p-queue';
import { CancelledError, errorRecordOf, NonRetryableError, PromisedError, RetryAfterError } from '../errors.js';
import { toJsonText } from '../json.js';
import type { ClaimedRow } from '../persistence/store.js';
import type { KernelContext } from './context.js';
import { OutcomeBatch, type Outcome } from './outcome-batch.js';
import { ProgressWriter } from './progress-writer.js';
import { runHandler, type HandlerRun } from './run-handler.js';
import { storableError } from './storable-text.js';
import type { TaskContext, TaskDefinition } from './task-context.js';
import { startAttempt, withTraceScope, type AttemptTrace } from './tracing.js';
import { MAX_DELAY_MS } from './options.js';
import { stepOf, type ClaimRef } from './transition-types.js';

interface RunningClaim {
  claim: ClaimRef;
  task: TaskDefinition;
  controller: AbortController;
  /** Set when the claim was cancelled or taken over: its outcome must not be committed. */
  fencedOff: boolean;
  progress: ProgressWriter;
  /** Its span, ended once the claim is finished (its outcome committed or refused). */
  attempt: AttemptTrace;
}

/** How often claims are checked against changes made elsewhere (a cancel from another process lands within this). */
const CLAIM_CHECK_INTERVAL_MS = 250;

/**
 * Runs claimed promises: each handler in a bounded, prioritised pool (p-queue), its outcome
 * committed through the promise machine with the claim's fencing token. Concurrency counts
 * handler bodies, not signals: a body that ignores its aborted signal keeps its slot until it
 * returns. Heartbeats renew every lease this process holds in one statement and abort handlers
 * whose claim was taken over.
 */
export class ClaimRunner {
  readonly #ctx: KernelContext;
  /** A slot was freed or work was committed: the scheduler may claim more. */
  readonly #onSettled: () => void;
  readonly #pool: PQueue;
  readonly #running = new Map<number, RunningClaim>();
  readonly #outcomes: OutcomeBatch;
  /** Bodies still running after their claim was finished (they ignored an aborted signal): they hold slots. */
  #lingering = 0;
  #lastClaimCheck = 0;
  #claimCheckQueued = false;
  #lastHeartbeat = performance.now();
  #heartbeating = false;
  #typesSinceHeartbeat = new Set<string>();

  constructor(ctx: KernelContext, onSettled: () => void) {
    this.#ctx = ctx;
    this.#onSettled = onSettled;
    this.#pool = new PQueue({ concurrency: ctx.options.concurrency });
    this.#outcomes = new OutcomeBatch(ctx, (outcome) => {
      this.#finish(this.#running.get(outcome.claim.id));
      this.#onSettled();
    });
  }

  /** Slots in use: claims running or awaiting their commit, and bodies that outlived their claim. */
  get size(): number {
    return this.#running.size + this.#lingering;
  }

  /** Resolves once no handler runs here and every outcome is committed. */
  async settled(): Promise<void> {
    while (this.size > 0) {
      await this.#pool.onIdle();
      await this.#outcomes.drain(Date.now() + 60_000);
      if (this.size > 0) await new Promise((resolve) => setImmediate(resolve));
    }
  }

  has(id: number): boolean {
    return this.#running.has(id);
  }

  #entryOf(row: ClaimedRow): RunningClaim {
    const claim: ClaimRef = { id: row.id, type: row.type, leaseToken: row.lease_token, attempts: row.attempts, maxAttempts: row.max_attempts, leaseLosses: row.lease_losses, step: stepOf(row) };
    const entry: RunningClaim = {
      claim,
      task: this.#ctx.tasks.get(row.type)!,
      controller: new AbortController(),
      fencedOff: false,
      progress: new ProgressWriter(this.#ctx, claim, () => !entry.fencedOff && this.#running.get(claim.id) === entry),
      attempt: startAttempt(claim, row.trace_context),
    };
    this.#running.set(row.id, entry);
    this.#typesSinceHeartbeat.add(row.type);
    return entry;
  }

  /** Runs a claim in the pool; its outcome joins the next batched commit; the slot is held until the body returns. */
  start(row: ClaimedRow): void {
    const entry = this.#entryOf(row);
    void this.#pool.add(
      async () => {
        const run = this.#run(entry, row.payload);
        const outcome = await this.#outcomeOf(entry, run);
        if (entry.fencedOff) {
          this.#finish(entry);
          this.#onSettled();
        } else {
          this.#outcomes.push(outcome);
        }
        await this.#holdSlotUntilBodyReturns(run);
      },
      { priority: row.priority },
    );
  }

  /** Runs a claim here and now and commits its outcome before returning (immediate mode). */
  async runInline(row: ClaimedRow): Promise<void> {
    const entry = this.#entryOf(row);
    try {
      const outcome = await this.#outcomeOf(entry, this.#run(entry, row.payload));
      if (!entry.fencedOff) await this.#outcomes.commitNow([outcome]);
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

  #run(entry: RunningClaim, payloadText: string): HandlerRun {
    const { claim, task, controller } = entry;
    const ctx: TaskContext = {
      id: String(claim.id),
      type: claim.type,
      attempt: claim.attempts,
      maxAttempts: claim.maxAttempts,
      signal: controller.signal,
      key: `promise:${claim.id}`,
      logger: this.#logOf(claim),
      progress: (current, total) => entry.progress.report(current, total),
      parents: async () => Object.fromEntries((await this.#ctx.store.parentResultsOf(claim.id)).map((row) => [String(row.id), row.result === null ? null : JSON.parse(row.result)])),
    };
    // The attempt span is active in the handler: what it enqueues is that span's child.
    return withTraceScope(entry.attempt.scope, () => runHandler(task, JSON.parse(payloadText), ctx, controller));
  }

  #logOf(claim: ClaimRef) {
    return this.#ctx.options.logger.child({ promiseId: claim.id, type: claim.type, attempt: claim.attempts });
  }

  /**
   * Turns whatever the attempt did into an outcome. Never throws. An attempt that ended by its
   * signal (a timeout) while its body runs on commits only once the body returns, or after one
   * lease: its retry never runs beside it, and a body that never returns cannot hold its promise
   * for ever.
   */
  async #outcomeOf(entry: RunningClaim, run: HandlerRun): Promise<Outcome> {
    const { claim, task } = entry;
    const began = performance.now();
    let outcome: Outcome;
    try {
      const result = await run.outcome;
      const stored = result === undefined || !task.options.storeResult ? null : toJsonText(result, 'result');
      outcome = { claim, task, attempt: entry.attempt, kind: 'succeed', result: stored };
      entry.attempt.succeeded();
    } catch (thrown) {
      const error = storableError(errorRecordOf(thrown));
      if (!entry.fencedOff) this.#logOf(claim).warn({ code: error.code, message: error.message }, 'attempt failed');
      if (!entry.fencedOff) this.#logOf(claim).debug({ err: thrown }, 'attempt failed: its stack');
      outcome = { claim, task, attempt: entry.attempt, kind: 'fail', error, ...failurePolicyOf(thrown) };
      entry.attempt.failed(thrown, error.code);
    }
    if (this.#ctx.emitter.listenerCount('attempt') > 0) {
      const durationMs = performance.now() - began;
      this.#ctx.emitter.emit('attempt', { id: String(claim.id), type: claim.type, attempt: claim.attempts, outcome: outcome.kind === 'succeed' ? 'succeeded' : 'failed', durationMs });
    }
    if (!entry.fencedOff && !run.bodyDone()) await this.#waitForBody(entry, run, this.#ctx.options.leaseMs);
    return { ...outcome, progress: entry.progress.takeUnwritten() };
  }

  /** Waits up to `graceMs` for a body that outlived its attempt; says so when it does not return. */
  async #waitForBody(entry: RunningClaim, run: HandlerRun, graceMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)));
    await Promise.race([run.body, grace]);
    clearTimeout(timer);
    if (!run.bodyDone()) {
      this.#logOf(entry.claim).error(
        { graceMs },
        'the handler ignored its aborted signal: its outcome is committed now, and its concurrency slot stays held until its body returns',
      );
    }
  }

  /** The pool slot is the body's: it is freed when the handler's own code returns, not when its signal aborts. */
  async #holdSlotUntilBodyReturns(run: HandlerRun): Promise<void> {
    if (run.bodyDone()) return;
    this.#lingering++;
    // The claim itself may be finished (committed, cancelled, taken over) while the body runs on.
    try {
      await run.body;
    } finally {
      this.#lingering--;
      this.#onSettled();
    }
  }

  #finish(entry: RunningClaim | undefined): void {
    if (!entry) return;
    if (entry.fencedOff) entry.attempt.abandoned();
    entry.attempt.end();
    entry.progress.stop();
    this.#running.delete(entry.claim.id);
  }

  /**
   * Renews every lease this process holds; aborts the handlers whose claim was taken over. A
   * heartbeat that comes a lease late means the event loop was blocked (CPU-bound work on it):
   * said, since other processes may have taken the claims over meanwhile.
   */
  async heartbeat(): Promise<void> {
    // Lateness is judged at every tick, also one that finds a renewal still in flight.
    this.#sayIfLate();
    // One at a time: a renewal still waiting on the database must not be joined by another.
    if (this.#heartbeating) return;
    this.#heartbeating = true;
    try {
      await this.#beat();
    } finally {
      this.#heartbeating = false;
    }
  }

  #sayIfLate(): void {
    const sinceLast = performance.now() - this.#lastHeartbeat;
    this.#lastHeartbeat = performance.now();
    // Every claim held since the last tick: the one that blocked may have committed before this ran.
    for (const entry of this.#running.values()) this.#typesSinceHeartbeat.add(entry.claim.type);
    const types = [...this.#typesSinceHeartbeat];
    this.#typesSinceHeartbeat = new Set([...this.#running.values()].map((entry) => entry.claim.type));
    if (sinceLast <= this.#ctx.options.leaseMs || types.length === 0) return;
    this.#ctx.options.logger.warn(
      { blockedMs: Math.round(sinceLast), leaseMs: this.#ctx.options.leaseMs, running: types },
      'heartbeat ran late: the event loop was blocked longer than the lease, so other processes may have taken these claims over; run CPU-bound work in a worker thread (docs/durability.md)',
    );
  }

  /** The heartbeat's clock starts when the engine starts, not when it was built. */
  resetHeartbeatClock(): void {
    this.#lastHeartbeat = performance.now();
  }

  async #beat(): Promise<void> {
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
    const deadline = Date.now() + timeoutMs;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)));
    await Promise.race([this.#pool.onIdle(), timedOut]);
    clearTimeout(timer);
    await this.#outcomes.drain(Math.max(deadline, Date.now() + 5_000));
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

/** What a handler's error asks of the next attempt: none (`NonRetryableError`), or not before a time (`RetryAfterError`). */
function failurePolicyOf(thrown: unknown): { final?: boolean; retryAfterMs?: number } {
  if (thrown instanceof NonRetryableError) return { final: true };
  if (thrown instanceof RetryAfterError && Number.isFinite(thrown.retryAfterMs)) return { retryAfterMs: Math.min(Math.max(0, thrown.retryAfterMs), MAX_DELAY_MS) };
  return {};
}
