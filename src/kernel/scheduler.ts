import type { ClaimedRow } from '../persistence/store.js';
import { promiseLaw } from '../machines/transition-table.js';
import { claimBatches } from './batch-claim.js';
import type { ClaimRunner } from './claim-runner.js';
import type { KernelContext } from './context.js';
import { EXPIRY_BATCH, expireOverdue } from './deadlines.js';
import { claimFlowControlled } from './flow-claim.js';
import { timerDelay } from './timers.js';
import { detachedFromTrace } from './tracing.js';

/** What one claiming transaction took: one array of rows per handler call (one row, or a batch). */
interface PassClaim {
  runs: ClaimedRow[][];
  /** The earliest time something refused or not ready yet may go (a rate limit, a batch, more overdue deadlines). */
  retryAt: number | null;
  dueBy: number;
}

const BACKGROUND_RETRY_MS = 1_000;

/**
 * Claims as many due promises as there are free slots, whenever something may have become
 * runnable (a wake-up), and otherwise sleeps on one timer for the earliest due run-at. Lease
 * recovery has a timer of its own, for the earliest lease expiry: tied to free slots, a dead
 * worker's claims would wait for as long as the survivors stay busy.
 */
export class Scheduler {
  readonly #ctx: KernelContext;
  readonly #runner: ClaimRunner;
  readonly #started: () => boolean;
  /** Recovers claims whose lease expired (their process died or froze). */
  readonly #recoverExpiredLeases: () => Promise<number>;
  #passScheduled = false;
  #claiming = false;
  #wakeAgain = false;
  #dueTimer: NodeJS.Timeout | undefined;
  #leaseTimer: NodeJS.Timeout | undefined;

  constructor(ctx: KernelContext, runner: ClaimRunner, started: () => boolean, recoverExpiredLeases: () => Promise<number>) {
    this.#ctx = ctx;
    this.#runner = runner;
    this.#started = started;
    this.#recoverExpiredLeases = recoverExpiredLeases;
  }

  /** Asks for a claim pass soon; many wake-ups in one turn make one pass. */
  wake(): void {
    if (!this.#started() || this.#passScheduled) return;
    this.#passScheduled = true;
    // Detached from the waking caller's trace: a pass serves every promise, not that caller.
    setImmediate(
      detachedFromTrace(() => {
        this.#passScheduled = false;
        void this.#claimPass();
      }),
    );
  }

  stop(): void {
    if (this.#dueTimer) clearTimeout(this.#dueTimer);
    this.#dueTimer = undefined;
    if (this.#leaseTimer) clearTimeout(this.#leaseTimer);
    this.#leaseTimer = undefined;
  }

  /**
   * Watches leases: sleeps until the earliest lease expiry (or one lease when none is held: a
   * claim made meanwhile expires no sooner), recovers what expired, and sleeps again. Recovery
   * skips this process's own live claims; the floor keeps an own lease whose heartbeat is late
   * from turning this into a busy loop.
   */
  async watchLeases(): Promise<void> {
    if (!this.#started()) return;
    const { leaseMs } = this.#ctx.options;
    let delay = leaseMs;
    try {
      await this.#recoverExpiredLeases();
      const next = await this.#ctx.store.nextLeaseExpiry();
      if (next !== null) delay = next + 1 - this.#ctx.options.clock.now();
    } catch (error) {
      this.#ctx.reportError(error, 'lease recovery failed; retrying');
      delay = BACKGROUND_RETRY_MS;
    }
    if (!this.#started()) return;
    if (this.#leaseTimer) clearTimeout(this.#leaseTimer);
    this.#leaseTimer = setTimeout(detachedFromTrace(() => void this.watchLeases()), timerDelay(Math.max(delay, Math.max(10, leaseMs / 10))));
    this.#leaseTimer.unref();
  }

  async #claimPass(): Promise<void> {
    if (this.#claiming) {
      this.#wakeAgain = true;
      return;
    }
    this.#claiming = true;
    const runner = this.#runner;
    const { concurrency } = this.#ctx.options;
    try {
      const types = this.#ctx.tasks.types;
      while (this.#started() && types.length > 0) {
        const free = concurrency - runner.size;
        if (free <= 0) {
          await this.#expireWhileFull();
          return;
        }
        const { runs: claimed, retryAt, dueBy } = await this.#claimPassOnce(free, types);
        for (const run of claimed) runner.start(run);
        if (claimed.length < free) {
          await this.#armDueTimer(dueBy, retryAt);
          return;
        }
      }
    } catch (error) {
      this.#ctx.reportError(error, 'claim pass failed; retrying');
      this.#armTimer(BACKGROUND_RETRY_MS);
    } finally {
      this.#claiming = false;
      if (this.#wakeAgain) {
        this.#wakeAgain = false;
        this.wake();
      }
    }
  }

  /**
   * One claim pass now, after any pass in flight: starts what it claims and returns how many
   * (-1 when no slot is free). For `idle()`: a pass that finds nothing means nothing is runnable.
   */
  async passNow(): Promise<number> {
    while (this.#claiming) await new Promise((resolve) => setImmediate(resolve));
    this.#claiming = true;
    try {
      const free = this.#ctx.options.concurrency - this.#runner.size;
      if (free <= 0) return -1;
      const { runs } = await this.#claimPassOnce(free, this.#ctx.tasks.types);
      for (const run of runs) this.#runner.start(run);
      return runs.length;
    } finally {
      this.#claiming = false;
    }
  }

  /** Claims up to `limit` runs (a promise, or a batch) of `types` in one transaction; `ignoreDelays` also takes those due later. */
  async claim(limit: number, types: string[], { ignoreDelays }: { ignoreDelays: boolean }): Promise<ClaimedRow[][]> {
    return (await this.#claimPassOnce(limit, types, ignoreDelays)).runs;
  }

  /** Types with a schedule-to-start deadline: only their pending rows can be overdue. */
  #expiringTypes(): string[] {
    return this.#ctx.tasks.types.filter((type) => this.#ctx.tasks.get(type)!.options.expireIn !== null);
  }

  /**
   * Every slot is taken, yet a deadline must not wait for one: the overdue promises fail now,
   * and the timer is armed for the next deadline (a slot freed wakes a full pass anyway).
   */
  async #expireWhileFull(): Promise<void> {
    const expiring = this.#expiringTypes();
    if (expiring.length === 0) return;
    const { transitions, options } = this.#ctx;
    const seen = await this.#ctx.write((uow) => expireOverdue(uow, transitions, expiring, options.clock.now()));
    const next = seen === EXPIRY_BATCH ? options.clock.now() : await this.#ctx.store.nextStartBy(expiring);
    if (next !== null) this.#armTimer(next + 1 - options.clock.now());
  }

  /**
   * One claiming transaction: types without flow control in one statement, then each
   * flow-controlled type under its limits. `retryAt`: when a start a rate limit refused may go.
   */
  async #claimPassOnce(limit: number, types: string[], ignoreDelays = false): Promise<PassClaim> {
    const toStatus = promiseLaw.next('pending', 'CLAIM')!;
    const { owner, options, emitter, tasks, transitions } = this.#ctx;
    const snapshot = promiseLaw.snapshotText(toStatus);
    const optionsOf = (type: string) => tasks.get(type)!.options;
    const plain = types.filter((type) => !optionsOf(type).flow && !optionsOf(type).batch);
    const controlled = types.filter((type) => optionsOf(type).flow);
    const batched = types.filter((type) => optionsOf(type).batch);
    const expiring = this.#expiringTypes();
    return this.#ctx.write(async (uow) => {
      const { now } = uow;
      const dueBy = ignoreDelays ? Number.MAX_SAFE_INTEGER : now;
      let retryAt: number | null = null;
      const hint = (at: number | null) => void (at !== null && (retryAt = Math.min(retryAt ?? at, at)));
      // Deadlines first, judged at the time read once this transaction holds its lock: nothing
      // claimed below starts after its deadline.
      if ((await expireOverdue(uow, transitions, expiring, options.clock.now())) === EXPIRY_BATCH) hint(now);
      const terms = { owner, leaseExpiresAt: now + options.leaseMs, toStatus, snapshot };
      const rows = plain.length === 0 ? [] : await uow.tx.claimDue({ now, dueBy, limit, types: plain, ...terms });
      for (const type of controlled) {
        if (rows.length >= limit) break;
        const flow = await claimFlowControlled(uow, type, optionsOf(type).flow!, limit - rows.length, dueBy, terms, options.clock);
        rows.push(...flow.rows);
        hint(flow.retryAt);
      }
      const runs = rows.map((row) => [row]);
      for (const type of batched) {
        if (runs.length >= limit) break;
        const claim = await claimBatches(uow, type, optionsOf(type).batch!, limit - runs.length, dueBy, terms, options.clock.now());
        runs.push(...claim.batches);
        hint(claim.retryAt);
      }
      // Claims are the hottest transition: recorded only when someone listens to transitions.
      if (emitter.listenerCount('transition') > 0) {
        for (const row of runs.flat()) uow.record({ id: row.id, type: row.type, event: 'CLAIM', from: 'pending', to: toStatus });
      }
      return { runs, retryAt, dueBy };
    });
  }

  /**
   * Sleeps until the next run-at after the pass's own due time (rows due by then were the
   * pass's to take), or the time a rate limit lets a refused start go.
   */
  async #armDueTimer(dueBy: number, retryAt: number | null): Promise<void> {
    const { store } = this.#ctx;
    const nextRunAt = await store.nextRunAt(this.#ctx.tasks.types, dueBy);
    const expiring = this.#expiringTypes();
    // A deadline passes when the clock is past it: the timer fires just after.
    const nextDeadline = expiring.length === 0 ? null : await store.nextStartBy(expiring);
    const candidates = [nextRunAt, retryAt, nextDeadline === null ? null : nextDeadline + 1].filter((at): at is number => at !== null);
    const runAt = candidates.length === 0 ? null : Math.min(...candidates);
    if (runAt === null) {
      if (this.#dueTimer) clearTimeout(this.#dueTimer);
      this.#dueTimer = undefined;
      return;
    }
    this.#armTimer(runAt - this.#ctx.options.clock.now());
  }

  #armTimer(delayMs: number): void {
    if (this.#dueTimer) clearTimeout(this.#dueTimer);
    this.#dueTimer = setTimeout(() => {
      this.#dueTimer = undefined;
      this.wake();
    }, timerDelay(delayMs));
    this.#dueTimer.unref();
  }
}
