import type { Logger } from 'pino';
import type { StoreTransaction } from '../persistence/store.js';
import type { Work } from './unit-of-work.js';

/** What {@link removeFinished} removes, and how. */
export interface CleanupRequest {
  /** Also remove every promise finished more than this many ms ago. */
  olderThan?: number | undefined;
  batchSize: number;
  onProgress?: ((removed: number) => void) | undefined;
}

/**
 * Removes finished promises (their results, edges and history) whose expiry passed and, with
 * `olderThan`, every promise finished before that age: one transaction per batch, so writers are
 * never blocked for long.
 */
export async function removeFinished(write: <T>(work: Work<T>) => Promise<T>, log: Logger, request: CleanupRequest): Promise<{ removed: number }> {
  const { olderThan, batchSize, onProgress } = request;
  let removed = 0;
  const sweep = async (remove: (tx: StoreTransaction, now: number) => Promise<number> | number) => {
    for (;;) {
      const count = await write(async ({ tx, now }) => remove(tx, now));
      removed += count;
      onProgress?.(removed);
      if (count < batchSize) return;
      await new Promise((resolve) => setImmediate(resolve));
    }
  };
  await sweep((tx, now) => tx.deleteExpired(now, batchSize));
  if (olderThan !== undefined) await sweep((tx, now) => tx.deleteFinishedBefore(now - olderThan, batchSize));
  if (removed > 0) log.info({ removed }, 'cleanup removed finished promises');
  return { removed };
}
