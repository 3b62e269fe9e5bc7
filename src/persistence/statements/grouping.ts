import { sql } from 'kysely';
import { defineStatement, type StatementTools } from '../statement.js';

// Debounce and batches: the promises of one key that enqueues collapse into, and the keys whose
// runnable promises form a batch. Both are decided from the rows, inside the transaction.

/**
 * The pending, never-started promise of a debounced key, locked for the merge: a claimer that
 * took it first makes this wait, and then it is in progress and no longer found.
 */
export const pendingDebounced = defineStatement({ locks: 'update', wakes: false }, ({ db, p, lock }: StatementTools<{ type: string; key: string }>) =>
  lock(
    db
      .selectFrom('promises')
      .select(['id', 'created_at'])
      .where('type', '=', p('type'))
      .where('debounce_key', '=', p('key'))
      .where('status', '=', sql.lit('pending')),
  ),
);

/** A later enqueue of a debounced key: its payload (and what is derived from it) replaces the pending one's, and its run-at moves. */
export const mergeDebounced = defineStatement(
  { locks: 'none', wakes: false },
  ({ db, p }: StatementTools<{ id: number; payload: string; priority: number; flowKey: string | null; rateKey: string | null; runAt: number; now: number }>) =>
    db
      .updateTable('promises')
      .set({ payload: p('payload'), priority: p('priority'), flow_key: p('flowKey'), rate_key: p('rateKey'), run_at: p('runAt'), updated_at: p('now') })
      .where('id', '=', p('id'))
      .where('status', '=', sql.lit('pending')),
);

/** The arguments the batch reads bind: runnable means pending and due by `dueBy`. */
type BatchArgs = { type: string; dueBy: number };

function runnableOfType({ db, p }: StatementTools<BatchArgs>) {
  return db
    .selectFrom('promises')
    .where('flow_key', 'is not', null)
    .where('type', '=', p('type'))
    .where('status', '=', sql.lit('pending'))
    .where('run_at', '<=', p('dueBy'));
}

/**
 * The keys of a batched type whose runnable promises make a batch: at least `size` of them, or
 * the oldest runnable since `readyBefore` or earlier (it has waited `waitMs`); oldest first.
 */
export const readyBatchKeys = defineStatement(
  { locks: 'none', wakes: false },
  (tools: StatementTools<BatchArgs & { size: number; readyBefore: number; limit: number }>) => {
    const { db, p } = tools;
    return runnableOfType(tools)
      .where('type', 'not in', db.selectFrom('paused_types').select('type'))
      .select((eb) => ['flow_key as key', eb.fn.countAll<number>().as('n'), eb.fn.min<number>('run_at').as('oldest')])
      .groupBy('flow_key')
      .having((eb) => eb.or([eb(eb.fn.countAll(), '>=', p('size')), eb(eb.fn.min('run_at'), '<=', p('readyBefore'))]))
      .orderBy((eb) => eb.fn.min('run_at'))
      .limit(p('limit'));
  },
);

/** How many promises of one batch key are runnable, and since when the oldest (read again under the key's lock). */
export const batchState = defineStatement({ locks: 'none', wakes: false }, (tools: StatementTools<BatchArgs & { key: string }>) =>
  runnableOfType(tools)
    .where('flow_key', '=', tools.p('key'))
    .select((eb) => [eb.fn.countAll<number>().as('n'), eb.fn.min<number | null>('run_at').as('oldest')]),
);

/** Since when the oldest runnable promise of a batched type has waited: its batch is due `waitMs` after. */
export const oldestRunnable = defineStatement({ locks: 'none', wakes: false }, (tools: StatementTools<BatchArgs>) =>
  runnableOfType(tools)
    // A paused type's batches are not timed: resuming wakes every claimer.
    .where('type', 'not in', tools.db.selectFrom('paused_types').select('type'))
    .select((eb) => eb.fn.min<number | null>('run_at').as('oldest')),
);
