import { TimeoutError } from '../errors.js';

interface Waiter {
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

/**
 * Callers of `engine.result()` waiting for promises to finish. Waiters are woken by this
 * process's own commits and, for promises finished elsewhere, by the store's change signal;
 * each wake-up reads the row, so the answer is always what is on disk.
 */
export class ResultWaiters {
  readonly #waiters = new Map<number, Set<Waiter>>();
  /** `{ value }` when finished successfully; throws when failed or missing; `undefined` while unfinished. */
  readonly #read: (id: number) => Promise<{ value: unknown } | undefined>;
  readonly #onWait: () => void;

  constructor(read: (id: number) => Promise<{ value: unknown } | undefined>, onWait: () => void) {
    this.#read = read;
    this.#onWait = onWait;
  }

  /** Resolves with the result (or rejects with the failure) of promise `id`; `TimeoutError` after `timeout` ms. */
  async wait(id: number, timeout: number | undefined): Promise<unknown> {
    const settled = await this.#read(id);
    if (settled) return settled.value;
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const waiter: Waiter = {
        resolve: (value) => {
          if (timer) clearTimeout(timer);
          resolve(value);
        },
        reject: (error) => {
          if (timer) clearTimeout(timer);
          reject(error);
        },
      };
      let set = this.#waiters.get(id);
      if (!set) this.#waiters.set(id, (set = new Set()));
      set.add(waiter);
      this.#onWait();
      if (timeout !== undefined) {
        timer = setTimeout(() => {
          this.#remove(id, waiter);
          reject(new TimeoutError(`promise ${id} did not finish within ${timeout} ms`));
        }, timeout);
      }
      // Finished (by another process) between the first read and the registration.
      void this.settle(id);
    });
  }

  /** Re-reads promise `id` and answers its waiters if it finished. */
  async settle(id: number): Promise<void> {
    const set = this.#waiters.get(id);
    if (!set || set.size === 0) return;
    try {
      const settled = await this.#read(id);
      if (!settled) return;
      this.#waiters.delete(id);
      for (const waiter of set) waiter.resolve(settled.value);
    } catch (error) {
      this.#waiters.delete(id);
      for (const waiter of set) waiter.reject(error);
    }
  }

  /** Re-reads every awaited promise (after another process changed the database). */
  settleAll(): void {
    for (const id of this.#waiters.keys()) void this.settle(id);
  }

  rejectAll(errorFor: (id: number) => Error): void {
    for (const [id, set] of this.#waiters) for (const waiter of set) waiter.reject(errorFor(id));
    this.#waiters.clear();
  }

  #remove(id: number, waiter: Waiter): void {
    const set = this.#waiters.get(id);
    set?.delete(waiter);
    if (set?.size === 0) this.#waiters.delete(id);
  }
}
