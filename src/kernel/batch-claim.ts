import type { ClaimedRow } from '../persistence/store.js';
import type { ClaimTerms } from './flow-claim.js';
import type { BatchPolicy } from './grouping-options.js';
import type { UnitOfWork } from './unit-of-work.js';

/** A key another claimer held is tried again this soon (its claim does not wake anyone). */
const CONTENDED_RETRY_MS = 50;
/** A batch found ready but not taken (a race on PostgreSQL) is looked at again this soon, not in a busy loop. */
const MIN_RETRY_MS = 10;

/** What a batch claim pass took: one array of rows per handler call. */
export interface BatchClaim {
  batches: ClaimedRow[][];
  /** When the next batch falls due (the oldest runnable promise has waited `waitMs`); null: none. */
  retryAt: number | null;
}

/**
 * Claims up to `free` batches of a batched type (each one handler call, one slot), deciding
 * inside the claiming transaction from the rows: a key's runnable promises make a batch when
 * there are `size` of them or the oldest has waited `waitMs`; the batch is its first `size` in
 * claim order, claimed by one statement, so no two claimers split or share it. On PostgreSQL a
 * claimer locks the key's row (skipping a key another claimer holds) and reads the key's state
 * again under the lock; SQLite's only writer trusts what it read.
 */
export async function claimBatches(uow: UnitOfWork, type: string, policy: BatchPolicy, free: number, dueBy: number, terms: ClaimTerms, now: number): Promise<BatchClaim> {
  const { tx } = uow;
  // Ignoring delays (immediate mode), dueBy is far ahead: every runnable promise has waited enough.
  const readyBefore = dueBy - policy.waitMs;
  const batches: ClaimedRow[][] = [];
  let retryAt: number | null = null;
  for (const { key } of await tx.readyBatchKeys({ type, dueBy, size: policy.size, readyBefore, limit: free * 2 })) {
    if (batches.length >= free) break;
    if (!tx.serialized) {
      if (!(await tx.lockFlowKey(type, key))) {
        retryAt = earliest(retryAt, now + CONTENDED_RETRY_MS);
        continue;
      }
      const state = await tx.batchState(type, key, dueBy);
      if (state.count < policy.size && (state.oldest === null || state.oldest > readyBefore)) continue;
    }
    const rows = await tx.claimNextOfKey({ type, key, dueBy, limit: policy.size, now: uow.now, ...terms });
    if (rows.length > 0) batches.push(rows);
  }
  const oldest = await tx.oldestRunnable(type, dueBy);
  if (oldest !== null) retryAt = earliest(retryAt, Math.max(oldest + policy.waitMs + 1, now + MIN_RETRY_MS));
  return { batches, retryAt };
}

function earliest(a: number | null, b: number): number {
  return a === null ? b : Math.min(a, b);
}
