import PQueue from 'p-queue';
import { CancelledError, PromisedError } from '../errors.js';
import type { ClaimedRow } from '../persistence/store.js';
import { batchOutcomes, failedOutcome, succeededOutcome, type Settled } from './attempt-outcome.js';
import type { KernelContext } from './context.js';
import { OutcomeBatch, type Outcome } from './outcome-batch.js';
import { ProgressWriter } from './progress-writer.js';
import { runHandler, type HandlerRun } from './run-handler.js';
import type { TaskContext, TaskDefinition } from './task-context.js';
import { startAttempt, withTraceScope, type AttemptTrace } from './tracing.js';
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
  /** Set for a member of a batch: the members share one handler call and one slot. */
  group?: BatchGroup;
}

/** The members of one batch: one handler call, one slot, one signal. */
interface BatchGroup {
  /** The handler's signal: it aborts when every member is fenced off (or by timeout or stop). */
  controller: AbortController;
  /** Members still running or awaiting their commit. */
  open: number;
  /** Members fenced off (cancelled, taken over). */
  fenced: number;
  size: number;
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
  /** Running entries that are members of a batch, and the batches they make: a batch holds one slot. */
  #grouped = 0;
  #groups = 0;
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
    return this.#running.size - this.#grouped + this.#groups + this.#lingering;
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

  /**
   * Runs a claimed run in the pool (one promise, or a batch: one handler call for all its rows);
   * its outcomes join the next batched commit; the slot is held until the body returns.
   */
  start(rows: ClaimedRow[]): void {
    const members = this.#membersOf(rows);
    void this.#pool.add(
      async () => {
        const run = this.#run(members, rows);
        const outcomes = await this.#outcomesOf(members, run);
        members.forEach((entry, index) => {
          if (!entry.fencedOff) return this.#outcomes.push(outcomes[index]!);
          this.#finish(entry);
          this.#onSettled();
        });
        await this.#holdSlotUntilBodyReturns(run);
      },
      { priority: Math.max(...rows.map((row) => row.priority)) },
    );
  }

  /** Runs a claimed run here and now and commits its outcomes before returning (immediate mode). */
  async runInline(rows: ClaimedRow[]): Promise<void> {
    const members = this.#membersOf(rows);
    try {
      const outcomes = await this.#outcomesOf(members, this.#run(members, rows));
      const kept = outcomes.filter((_, index) => !members[index]!.fencedOff);
      if (kept.length > 0) await this.#outcomes.commitNow(kept);
    } finally {
      for (const entry of members) this.#finish(entry);
    }
  }

  /** The running entries of a run: a batched type's rows share one group, whatever their number. */
  #membersOf(rows: ClaimedRow[]): RunningClaim[] {
    const members = rows.map((row) => this.#entryOf(row));
    if (members[0]!.task.options.batch === null) return members;
    const group: BatchGroup = { controller: new AbortController(), open: members.length, fenced: 0, size: members.length };
    for (const entry of members) entry.group = group;
    this.#grouped += members.length;
    this.#groups++;
    return members;
  }

  /**
   * Aborts a running claim's handler and makes sure its outcome is never committed. A member of
   * a batch only leaves it: the batch's handler runs on for the others, its signal aborted once
   * every member is fenced off.
   */
  fenceOff(id: number, reason: Error): void {
    const entry = this.#running.get(id);
    if (!entry || entry.fencedOff) return;
    entry.fencedOff = true;
    entry.controller.abort(reason);
    const group = entry.group;
    if (group && ++group.fenced === group.size) group.controller.abort(reason);
  }

  #run(members: RunningClaim[], rows: ClaimedRow[]): HandlerRun {
    const [first] = members as [RunningClaim];
    const { claim, task } = first;
    const controller = first.group?.controller ?? first.controller;
    const ctx: TaskContext = {
      id: String(claim.id),
      type: claim.type,
      attempt: claim.attempts,
      maxAttempts: claim.maxAttempts,
      signal: controller.signal,
      key: `promise:${claim.id}`,
      logger: this.#logOf(claim),
      progress: (current, total) => members.forEach((entry) => entry.progress.report(current, total)),
      parents: async () => Object.fromEntries((await this.#ctx.store.parentResultsOf(claim.id)).map((row) => [String(row.id), row.result === null ? null : JSON.parse(row.result)])),
      ...(first.group ? { batch: { ids: members.map((entry) => String(entry.claim.id)), keys: members.map((entry) => `promise:${entry.claim.id}`) } } : {}),
    };
    // A batched type's handler always receives an array, of one payload or of many.
    const payloads = rows.map((row) => JSON.parse(row.payload) as unknown);
    // The attempt span is active in the handler: what it enqueues is that span's child (a
    // batch's first member's span).
    return withTraceScope(first.attempt.scope, () => runHandler(task, first.group ? payloads : payloads[0], ctx, controller));
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
  async #outcomesOf(members: RunningClaim[], run: HandlerRun): Promise<Outcome[]> {
    const began = performance.now();
    let settled: Settled;
    try {
      settled = { ok: true, value: await run.outcome };
    } catch (thrown) {
      settled = { ok: false, thrown };
      if (!members.every((entry) => entry.fencedOff)) this.#logOf(members[0]!.claim).debug({ err: thrown }, 'attempt failed: its stack');
    }
    const [first] = members as [RunningClaim];
    const outcomes = first.group ? batchOutcomes(members, settled) : [settled.ok ? succeededOutcome(first.claim, first.task, settled.value) : failedOutcome(first.claim, first.task, settled.thrown)];
    const durationMs = performance.now() - began;
    members.forEach((entry, index) => this.#reportAttempt(entry, outcomes[index]!, durationMs, settled.ok ? undefined : settled.thrown));
    const live = members.find((entry) => !entry.fencedOff);
    if (live && !run.bodyDone()) await this.#waitForBody(live, run, this.#ctx.options.leaseMs);
    return outcomes.map((outcome, index) => ({ ...outcome, progress: members[index]!.progress.takeUnwritten() }));
  }

  /** Logs and announces one member's attempt, and tells its span how it ended (`thrown`: what the handler threw, if it did). */
  #reportAttempt(entry: RunningClaim, outcome: Outcome, durationMs: number, thrown: unknown): void {
    const { claim } = entry;
    outcome.attempt = entry.attempt;
    if (outcome.kind === 'succeed') entry.attempt.succeeded();
    else entry.attempt.failed(thrown ?? outcome.error, outcome.error.code);
    if (outcome.kind === 'fail' && !entry.fencedOff) this.#logOf(claim).warn({ code: outcome.error.code, message: outcome.error.message }, 'attempt failed');
    if (this.#ctx.emitter.listenerCount('attempt') === 0) return;
    this.#ctx.emitter.emit('attempt', { id: String(claim.id), type: claim.type, attempt: claim.attempts, outcome: outcome.kind === 'succeed' ? 'succeeded' : 'failed', durationMs });
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
    if (!entry || this.#running.get(entry.claim.id) !== entry) return;
    if (entry.fencedOff) entry.attempt.abandoned();
    entry.attempt.end();
    entry.progress.stop();
    this.#running.delete(entry.claim.id);
    const group = entry.group;
    if (!group) return;
    this.#grouped--;
    if (--group.open === 0) this.#groups--;
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
