import type { PromiseTransitions } from './transitions.js';
import type { UnitOfWork } from './unit-of-work.js';

/** Overdue promises failed per transaction; a full batch asks for another pass at once. */
export const EXPIRY_BATCH = 500;

/**
 * Fails with `EXPIRED` the pending promises of `types` that were never started and whose start
 * deadline passed before `now` (read inside the transaction, once it holds its write lock, so
 * a claim in the same transaction never starts a promise after its deadline). Returns how many
 * overdue rows it saw.
 */
export async function expireOverdue(uow: UnitOfWork, transitions: PromiseTransitions, types: readonly string[], now: number): Promise<number> {
  if (types.length === 0) return 0;
  const overdue = await uow.tx.overdueUnstarted(types, now, EXPIRY_BATCH);
  for (const row of overdue) await transitions.expire(uow, row);
  return overdue.length;
}
