import type { ClaimedRow } from '../persistence/store.js';
import { promiseLaw } from '../machines/transition-table.js';
import type { ClaimRunner } from './claim-runner.js';
import type { KernelContext } from './context.js';
import { timerDelay } from './timers.js';

const BACKGROUND_RETRY_MS = 1_000;

/**
 * Claims as many due promises as there are free slots, whenever something may have become
 * runnable (a wake-up), and otherwise sleeps on one timer for the earliest due run-at or lease
 * expiry. Never polls.
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
    setImmediate(() => {
      this.#passScheduled = false;
      void this.#claimPass();
    });
  }

  stop(): void {
    if (this.#dueTimer) clearTimeout(this.#dueTimer);
    this.#dueTimer = undefined;
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
        const claimed = await this.claim(free, types, { ignoreDelays: false });
        for (const row of claimed) runner.start(row);
        if (claimed.length < free) {
          await this.#armDueTimer();
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

  /** Claims up to `limit` due promises of `types` in one transaction; `ignoreDelays` also takes those due later. */
  async claim(limit: number, types: string[], { ignoreDelays }: { ignoreDelays: boolean }): Promise<ClaimedRow[]> {
    const toStatus = promiseLaw.next('pending', 'CLAIM')!;
    const { owner, options, emitter } = this.#ctx;
    const snapshot = promiseLaw.snapshotText(toStatus);
    return this.#ctx.write(async (uow) => {
      const { now } = uow;
      const dueBy = ignoreDelays ? Number.MAX_SAFE_INTEGER : now;
      const claimed = await uow.tx.claimDue({ now, dueBy, limit, types, owner, leaseExpiresAt: now + options.leaseMs, toStatus, snapshot });
      // Claims are the hottest transition: recorded only when someone listens to transitions.
      if (emitter.listenerCount('transition') > 0) {
        for (const row of claimed) uow.record({ id: row.id, type: row.type, event: 'CLAIM', from: 'pending', to: toStatus });
      }
      return claimed;
    });
  }

  async #armDueTimer(): Promise<void> {
    const { store } = this.#ctx;
    const [runAt, leaseExpiry] = await Promise.all([store.nextRunAt(this.#ctx.tasks.types), store.nextLeaseExpiry()]);
    const candidates = [runAt, leaseExpiry === null ? null : leaseExpiry + 1].filter((at): at is number => at !== null);
    if (candidates.length === 0) {
      this.stop();
      return;
    }
    this.#armTimer(Math.min(...candidates) - this.#ctx.options.clock.now());
  }

  #armTimer(delayMs: number): void {
    if (this.#dueTimer) clearTimeout(this.#dueTimer);
    this.#dueTimer = setTimeout(() => {
      this.#dueTimer = undefined;
      void this.#onDue();
    }, timerDelay(delayMs));
    this.#dueTimer.unref();
  }

  async #onDue(): Promise<void> {
    if (!this.#started()) return;
    try {
      await this.#recoverExpiredLeases();
    } catch (error) {
      this.#ctx.reportError(error, 'lease recovery failed; retrying');
    }
    this.wake();
  }
}
