import type { StoreTransaction } from '../persistence/store.js';
import type { NewPromiseSpec } from './transition-types.js';

// What an enqueue finds before it inserts: an idempotency key still remembered, or a debounced
// key's pending promise to merge into. Both are read and written inside the enqueue's
// transaction, so they hold across processes (on PostgreSQL, two enqueues racing on one key
// conflict on a unique index and the loser runs again, then finds the winner's row).

/**
 * The promise that still remembers `key`, if any. A key is remembered while its promise is
 * unfinished, and after it settles for its type's `keyTtl` (or as long as the row lives, without
 * one); a key whose time is up is let go here, so the caller creates a new promise with it.
 */
export async function rememberedKeyHolder(tx: StoreTransaction, key: string, now: number): Promise<number | undefined> {
  const holder = await tx.keyHolder(key);
  if (holder === undefined) return undefined;
  const { completed_at: settledAt, key_ttl: keyTtl } = holder;
  if (settledAt === null || keyTtl === null || settledAt + keyTtl > now) return holder.id;
  await tx.forgetKey(holder.id, key);
  return undefined;
}

/**
 * A later enqueue of a debounced key: written into the key's pending, never-started promise
 * (payload, priority and what the task derives from the payload), which now runs `periodMs`
 * from now, but no later than `maxDelayMs` after its first enqueue. Its id, or undefined when
 * the key has no such promise (none yet, or it started: then a new one is created).
 */
export async function mergeIntoDebounced(tx: StoreTransaction, spec: NewPromiseSpec, now: number): Promise<number | undefined> {
  const debounce = spec.debounce!;
  const pending = await tx.pendingDebounced(spec.type, debounce.key);
  if (pending === undefined) return undefined;
  const runAt = debouncedRunAt(debounce, pending.created_at, now);
  const merged = await tx.mergeDebounced({ id: pending.id, payload: spec.payload, priority: spec.priority, flowKey: spec.flowKey, rateKey: spec.rateKey, runAt, now });
  if (!merged) return undefined;
  if (spec.flowKey !== null) await tx.ensureFlowKey(spec.type, spec.flowKey);
  return pending.id;
}

/** When a debounced promise first enqueued at `firstAt` runs, after an enqueue at `now`. */
export function debouncedRunAt(debounce: NonNullable<NewPromiseSpec['debounce']>, firstAt: number, now: number): number {
  const trailing = now + debounce.periodMs;
  return debounce.maxDelayMs === null ? trailing : Math.min(trailing, firstAt + debounce.maxDelayMs);
}
