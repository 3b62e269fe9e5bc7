import { InvalidOptionError, NotFoundError, PromisedError } from '../errors.js';
import { PROMISE_STATUSES } from '../machines/promise-machine.js';
import type { Store } from '../persistence/store.js';
import type { Kernel } from '../kernel/kernel.js';
import { integerIn } from '../kernel/options.js';
import { parseId, toRecord, type PromiseRecord } from '../kernel/records.js';
import { MAX_TIMER_MS } from '../kernel/timers.js';
import type { DeadLetter, EngineStats, HistoryLine, ListFilter, PageFilter, PromisePage, RetriedDeadLetters } from './public-types.js';
import { readPromisePage } from './promise-pages.js';
import type { PromiseId } from './typed-tasks.js';
import { readHistory, readStats, toDeadLetter } from './reports.js';

/** Each engine's kernel, for the test harness (`promised/testing`) only. */
const kernels = new WeakMap<EngineReads, Kernel>();

/** @internal The kernel of `engine`: for `promised/testing`, which moves its clock. */
export function kernelOf(engine: EngineReads): Kernel {
  return kernels.get(engine)!;
}

/**
 * What the engine answers about promises: records, results, history, stats, dead letters, and
 * whether it is idle. {@link Engine} adds registration, enqueueing, workflows and control.
 */
export class EngineReads {
  readonly #kernel: Kernel;

  /** @internal */
  constructor(kernel: Kernel) {
    this.#kernel = kernel;
    kernels.set(this, kernel);
  }

  /** The store this engine writes to (for tools built on the engine). @internal */
  get store(): Store {
    return this.#kernel.store;
  }

  /** This process's lease owner id (`host:pid:nonce`). */
  get owner(): string {
    return this.#kernel.owner;
  }

  /**
   * Resolves when nothing of this engine is runnable or running: every handler returned, every
   * outcome is committed, and nothing claimable is left (work held back by a delay, a limit or a
   * pause is not runnable).
   *
   * @example
   * ```ts
   * await engine.enqueue('review', { file: 'a.ts' });
   * await engine.idle();
   * ```
   */
  idle(): Promise<void> {
    return this.#kernel.idle();
  }

  /** The promise with this id, or `undefined`. */
  async get(id: string): Promise<PromiseRecord | undefined> {
    const rowId = parseId(id);
    return rowId === undefined ? undefined : this.#kernel.record(rowId);
  }

  /**
   * Waits for the promise to finish: resolves its result, or rejects with
   * {@link PromiseFailedError} (its `error` says why), {@link NotFoundError} or, after
   * `timeout` ms, {@link TimeoutError}.
   */
  async result<R = unknown>(id: string | PromiseId<R>, options: { timeout?: number } = {}): Promise<R> {
    const rowId = parseId(id);
    if (rowId === undefined) throw new NotFoundError(String(id));
    return (await this.#kernel.waitForResult(rowId, timeoutOption(options.timeout))) as R;
  }

  /** The ids of the promises that depend on this one (its `dependsOn` children), oldest first. */
  async dependentsOf(id: string): Promise<string[]> {
    const rowId = parseId(id);
    return rowId === undefined ? [] : (await this.#kernel.store.childrenOf(rowId)).map(String);
  }

  /** Promises, newest first. */
  async list(filter: ListFilter = {}): Promise<PromiseRecord[]> {
    if (filter.status !== undefined && !PROMISE_STATUSES.includes(filter.status)) {
      throw new InvalidOptionError('status', filter.status, PROMISE_STATUSES.join(' | '));
    }
    const limit = integerIn('limit', filter.limit ?? 100, 1, 10_000);
    const store = this.#kernel.store;
    const rows = await store.listPromises({ status: filter.status, type: filter.type, limit });
    const parents = await store.dependenciesOfMany(rows.map((row) => row.id));
    return rows.map((row) => toRecord(row, parents.get(row.id) ?? []));
  }

  /**
   * One page of promises, newest first, by cursor (keyset on the id, never an offset: the
   * thousandth page costs what the first does). Pass the answer's `next` as `before` for the
   * next page. Filters combine; `search` is a case-insensitive substring of the payload's JSON
   * or the error message. A filtered page reads at most a bounded range of ids (1,000,000;
   * 100,000 for a search), so it can be short and still have a `next`.
   *
   * @example
   * ```ts
   * const first = await engine.listPage({ status: 'failed', limit: 50 });
   * const second = first.next ? await engine.listPage({ status: 'failed', limit: 50, before: first.next }) : undefined;
   * ```
   */
  listPage(filter: PageFilter = {}): Promise<PromisePage> {
    return readPromisePage(this.#kernel.store, filter);
  }

  /** Counts by status and type, dead letters, the oldest due promise's wait, and recent throughput. */
  async stats(): Promise<EngineStats> {
    return readStats(this.#kernel.store, this.#kernel.clock.now());
  }

  /** The dead-letter record: promises that failed for good. `engine.retry(id)` takes one out again. */
  readonly deadLetters = {
    /** Dead letters, newest first. */
    list: async (options: { limit?: number } = {}): Promise<DeadLetter[]> => {
      const limit = integerIn('limit', options.limit ?? 100, 1, 10_000);
      return (await this.#kernel.store.listDeadLetters(limit)).map(toDeadLetter);
    },
    /**
     * Retries every promise in the dead-letter record (up to `limit`), oldest first so a parent
     * comes back before its children; each one refused is reported, not thrown.
     *
     * @example
     * ```ts
     * const { retried, skipped } = await engine.deadLetters.retryAll();
     * ```
     */
    retryAll: async (options: { limit?: number } = {}): Promise<RetriedDeadLetters> => {
      const limit = integerIn('limit', options.limit ?? 10_000, 1, 100_000);
      const letters = (await this.#kernel.store.listDeadLetters(limit)).map(toDeadLetter).reverse();
      const outcome: RetriedDeadLetters = { retried: [], skipped: [] };
      for (const letter of letters) {
        try {
          await this.#kernel.retry(Number(letter.promiseId));
          outcome.retried.push(letter.promiseId);
        } catch (error) {
          if (!(error instanceof PromisedError)) throw error;
          outcome.skipped.push({ id: letter.promiseId, code: error.code });
        }
      }
      return outcome;
    },
    /** Removes every dead-letter record (the promises themselves stay); returns how many. */
    clear: async (): Promise<{ removed: number }> => ({ removed: await this.#kernel.write(({ tx }) => Promise.resolve(tx.clearDeadLetters())) }),
  };

  /**
   * Removes finished promises (their results, edges and history) whose expiry passed, and, with
   * `olderThan`, every promise finished more than that many ms ago. Works in batches of
   * `batchSize` rows, one transaction each, so writers are never blocked for long.
   */
  cleanup(options: { olderThan?: number; batchSize?: number; onProgress?: (removed: number) => void } = {}): Promise<{ removed: number }> {
    const batchSize = integerIn('batchSize', options.batchSize ?? 1_000, 1, 100_000);
    const olderThan = options.olderThan === undefined ? undefined : integerIn('olderThan', options.olderThan, 0, Number.MAX_SAFE_INTEGER);
    return this.#kernel.cleanup({ olderThan, batchSize, onProgress: options.onProgress });
  }

  /**
   * A promise's history: when it was created, first started and finished (from its row) and
   * every exceptional transition (failed attempts, lease losses, cancellation, retries).
   */
  async history(id: string): Promise<HistoryLine[]> {
    const rowId = parseId(id);
    const history = rowId === undefined ? undefined : await readHistory(this.#kernel.store, rowId);
    if (!history) throw new NotFoundError(String(id));
    return history;
  }

}

/** A `timeout` option: ms within setTimeout's range, or none. */
export function timeoutOption(timeout: number | undefined): number | undefined {
  return timeout === undefined ? undefined : integerIn('timeout', timeout, 0, MAX_TIMER_MS);
}
