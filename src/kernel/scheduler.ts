import type { ClaimedRow } from '../persistence/store.js';
import { promiseLaw } from '../machines/transition-table.js';
import type { ClaimRunner } from './claim-runner.js';
import type { KernelContext } from './context.js';
import { claimFlowControlled, type FlowClaim } from './flow-claim.js';
import { timerDelay } from './timers.js';
import { detachedFromTrace } from './tracing.js';

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
        if (free <= 0) return;
        const { rows: claimed, retryAt, dueBy } = await this.#claimPassOnce(free, types);
        for (const row of claimed) runner.start(row);
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
      const { rows } = await this.#claimPassOnce(free, this.#ctx.tasks.types);
      for (const row of rows) this.#runner.start(row);
      return rows.length;
    } finally {
      this.#claiming = false;
    }
  }

  /** Claims up to `limit` due promises of `types` in one transaction; `ignoreDelays` also takes those due later. */
  async claim(limit: number, types: string[], { ignoreDelays }: { ignoreDelays: boolean }): Promise<ClaimedRow[]> {
    return (await this.#claimPassOnce(limit, types, ignoreDelays)).rows;
  }

  /**
   * One claiming transaction: types without flow control in one statement, then each
   * flow-controlled type under its limits. `retryAt`: when a start a rate limit refused may go.
   */
  async #claimPassOnce(limit: number, types: string[], ignoreDelays = false): Promise<FlowClaim & { dueBy: number }> {
    const toStatus = promiseLaw.next('pending', 'CLAIM')!;
    const { owner, options, emitter, tasks } = this.#ctx;
    const snapshot = promiseLaw.snapshotText(toStatus);
    const plain = types.filter((type) => !tasks.get(type)?.options.flow);
    const controlled = types.filter((type) => tasks.get(type)?.options.flow);
    return this.#ctx.write(async (uow) => {
      const { now } = uow;
      const dueBy = ignoreDelays ? Number.MAX_SAFE_INTEGER : now;
      const terms = { owner, leaseExpiresAt: now + options.leaseMs, toStatus, snapshot };
      const rows = plain.length === 0 ? [] : await uow.tx.claimDue({ now, dueBy, limit, types: plain, ...terms });
      let retryAt: number | null = null;
      for (const type of controlled) {
        if (rows.length >= limit) break;
        const flow = await claimFlowControlled(uow, type, tasks.get(type)!.options.flow!, limit - rows.length, dueBy, terms, options.clock);
        rows.push(...flow.rows);
        if (flow.retryAt !== null) retryAt = Math.min(retryAt ?? flow.retryAt, flow.retryAt);
      }
      // Claims are the hottest transition: recorded only when someone listens to transitions.
      if (emitter.listenerCount('transition') > 0) {
        for (const row of rows) uow.record({ id: row.id, type: row.type, event: 'CLAIM', from: 'pending', to: toStatus });
      }
      return { rows, retryAt, dueBy };
    });
  }

  /**
   * Sleeps until the next run-at after the pass's own due time (rows due by then were the
   * pass's to take), or the time a rate limit lets a refused start go.
   */
  async #armDueTimer(dueBy: number, retryAt: number | null): Promise<void> {
    const nextRunAt = await this.#ctx.store.nextRunAt(this.#ctx.tasks.types, dueBy);
    const runAt = nextRunAt === null ? retryAt : retryAt === null ? nextRunAt : Math.min(nextRunAt, retryAt);
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
