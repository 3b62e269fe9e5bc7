import type { Awaitable, ClaimedRow, ClaimRequest } from './store-rows.js';

/** A promise that holds an idempotency key, and what decides whether the key is still remembered. */
export interface KeyHolder {
  id: number;
  completed_at: number | null;
  key_ttl: number | null;
}

/** A pending promise to be failed instead of started (its deadline passed). */
export interface UnstartedRow {
  id: number;
  type: string;
  attempts: number;
  workflow_id: number | null;
  invoke_id: string | null;
}

/** A later enqueue of a debounced key, written into the pending promise of that key. */
export interface DebounceMerge {
  id: number;
  payload: string;
  priority: number;
  flowKey: string | null;
  rateKey: string | null;
  runAt: number;
  now: number;
}

/**
 * The operations of a transaction that flow control uses: idempotency keys, debounced keys,
 * start deadlines, batches, pauses, and the per-key limits. Every limit is decided by the
 * claiming (or enqueuing) transaction from the rows themselves. Each is one SQL statement.
 */
export interface FlowStoreTransaction {
  /** The promise holding an idempotency key, if any. */
  keyHolder(key: string): Awaitable<KeyHolder | undefined>;
  /** Lets go of a key its promise no longer remembers; false when it does not hold it any more. */
  forgetKey(id: number, key: string): Awaitable<boolean>;
  /** The pending, never-started promise of a debounced key (locked for the merge), if any. */
  pendingDebounced(type: string, key: string): Awaitable<{ id: number; created_at: number } | undefined>;
  /** Writes a later enqueue into a debounced key's pending promise; false when it is pending no more. */
  mergeDebounced(merge: DebounceMerge): Awaitable<boolean>;
  /** Pending, never-started promises of `types` whose start deadline passed before `now` (rows another claimer holds are skipped). */
  overdueUnstarted(types: readonly string[], now: number, limit: number): Awaitable<UnstartedRow[]>;
  /** Keys of a batched type whose runnable promises (due by `dueBy`) make a batch: `size` of them, or the oldest runnable by `readyBefore`. */
  readyBatchKeys(request: { type: string; dueBy: number; size: number; readyBefore: number; limit: number }): Awaitable<Array<{ key: string; count: number; oldest: number }>>;
  /** Runnable promises of one batch key: how many, and the oldest's run-at. */
  batchState(type: string, key: string, dueBy: number): Awaitable<{ count: number; oldest: number | null }>;
  /** The run-at of the oldest runnable promise of a batched type. */
  oldestRunnable(type: string, dueBy: number): Awaitable<number | null>;
  pauseType(type: string, now: number): Awaitable<void>;
  resumeType(type: string): Awaitable<boolean>;
  /** Makes sure a limited key has its row (written with the key's first promise). */
  ensureFlowKey(type: string, key: string): Awaitable<void>;
  /** Takes the row lock of a limited key (creating its row); false when another claimer holds it (skip the key this pass). */
  lockFlowKey(type: string, key: string): Awaitable<boolean>;
  /** Waits for the lock of a type's cap (creating its row). */
  lockTypeCap(type: string): Awaitable<void>;
  /** Keys with due pending work and fewer than `keyLimit` running, least recently served first. */
  readyFlowKeys(request: { type: string; dueBy: number; keyLimit: number; limit: number }): Awaitable<Array<{ key: string; running: number }>>;
  /** Claims up to `limit` due promises of one key in claim order. */
  claimNextOfKey(request: Omit<ClaimRequest, 'types'> & { type: string; key: string }): Awaitable<ClaimedRow[]>;
  /**
   * True when this transaction is the only writer (SQLite): what it read stays true until it
   * commits, so a count read once need not be taken again under a lock.
   */
  readonly serialized: boolean;
  countRunning(type: string, key: string | null): Awaitable<number>;
  /** The next due promises of `type` (of one key, when given), in claim order, for a flow-control pass to judge. */
  nextDue(request: { type: string; key: string | null; dueBy: number; limit: number }): Awaitable<Array<{ id: number; rate_key: string | null }>>;
  /** Claims one pending promise a flow-control pass chose; undefined when it is no longer pending. */
  claimById(request: Omit<ClaimRequest, 'types' | 'limit' | 'dueBy'> & { id: number }): Awaitable<ClaimedRow | undefined>;
  markKeyStarted(type: string, key: string, now: number): Awaitable<void>;
  /** Only where `serialized`: the next due promise of each of up to `limit` ready keys, in one statement; the keys are marked served. */
  claimReadyKeys(request: Omit<ClaimRequest, 'types'> & { type: string; keyLimit: number }): Awaitable<ClaimedRow[]>;
  /** Starts of a rate key after `since`: how many, and the oldest. */
  recentStarts(type: string, key: string, since: number): Awaitable<{ count: number; oldest: number | null }>;
  /** Records a start of a rate key and forgets those at or before `forgetBefore`. */
  recordStart(type: string, key: string, at: number, forgetBefore: number): Awaitable<void>;
}
