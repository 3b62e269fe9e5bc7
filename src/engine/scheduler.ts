import type { ClaimedRow, Store } from '../persistence/store.js';
import { promiseLaw } from '../machines/transition-table.js';
import type { ClaimRunner } from './claim-runner.js';
import type { Clock } from './options.js';
import type { AppliedTransition } from './transitions.js';

const MAX_TIMER_MS = 2 ** 31 - 1;
const BACKGROUND_RETRY_MS = 1_000;

export interface SchedulerHost {
  store: Store;
  clock: Clock;
  runner: ClaimRunner;
  owner: string;
  leaseMs: number;
  concurrency: number;
  started(): boolean;
  taskTypes(): string[];
  /** Recovers claims whose lease expired (their process died or froze). */
  recoverExpiredLeases(): Promise<number>;
  announce(transitions: AppliedTransition[], now: number): void;
  wantsTransitions(): boolean;
  backgroundError(error: unknown, message: string): void;
}

/**
 * Claims as many due promises as there are free slots, whenever something may have become
 * runnable (a wake-up), and otherwise sleeps on one timer for the earliest due run-at or lease
 * expiry. Never polls.
 */
export class Scheduler {
  readonly #host: SchedulerHost;
  #passScheduled = false;
  #claiming = false;
  #wakeAgain = false;
  #dueTimer: NodeJS.Timeout | undefined;

  constructor(host: SchedulerHost) {
    this.#host = host;
  }

  /** Asks for a claim pass soon; many wake-ups in one turn make one pass. */
  wake(): void {
    if (!this.#host.started() || this.#passScheduled) return;
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
    const { runner, concurrency, clock } = this.#host;
    try {
      const types = this.#host.taskTypes();
      while (this.#host.started() && types.length > 0) {
        const free = concurrency - runner.size;
        if (free <= 0) return;
        const now = clock.now();
        const claimed = await this.claim(free, now, now, types);
        for (const row of claimed) runner.start(row);
        if (claimed.length < free) {
          await this.#armDueTimer();
          return;
        }
      }
    } catch (error) {
      this.#host.backgroundError(error, 'claim pass failed; retrying');
      this.#armTimer(BACKGROUND_RETRY_MS);
    } finally {
      this.#claiming = false;
      if (this.#wakeAgain) {
        this.#wakeAgain = false;
        this.wake();
      }
    }
  }

  /** Claims up to `limit` promises due by `dueBy` (later than `now` to ignore delays) in one transaction. */
  async claim(limit: number, now: number, dueBy: number, types: string[]): Promise<ClaimedRow[]> {
    const toStatus = promiseLaw.next('pending', 'CLAIM')!;
    const { owner, leaseMs } = this.#host;
    const snapshot = promiseLaw.snapshotText(toStatus);
    const claimed = await this.#host.store.transaction(async (tx) =>
      tx.claimDue({ now, dueBy, limit, types, owner, leaseExpiresAt: now + leaseMs, toStatus, snapshot }),
    );
    if (this.#host.wantsTransitions()) {
      this.#host.announce(
        claimed.map((row) => ({ id: row.id, type: row.type, event: 'CLAIM' as const, from: 'pending' as const, to: toStatus })),
        now,
      );
    }
    return claimed;
  }

  async #armDueTimer(): Promise<void> {
    const { store } = this.#host;
    const [runAt, leaseExpiry] = await Promise.all([store.nextRunAt(this.#host.taskTypes()), store.nextLeaseExpiry()]);
    const candidates = [runAt, leaseExpiry === null ? null : leaseExpiry + 1].filter((at): at is number => at !== null);
    if (candidates.length === 0) {
      this.stop();
      return;
    }
    this.#armTimer(Math.min(...candidates) - this.#host.clock.now());
  }

  #armTimer(delayMs: number): void {
    if (this.#dueTimer) clearTimeout(this.#dueTimer);
    this.#dueTimer = setTimeout(() => {
      this.#dueTimer = undefined;
      void this.#onDue();
    }, Math.min(Math.max(0, delayMs), MAX_TIMER_MS));
    this.#dueTimer.unref();
  }

  async #onDue(): Promise<void> {
    if (!this.#host.started()) return;
    try {
      await this.#host.recoverExpiredLeases();
    } catch (error) {
      this.#host.backgroundError(error, 'lease recovery failed; retrying');
    }
    this.wake();
  }
}
