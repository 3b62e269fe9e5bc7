import { sql } from 'kysely';
import { defineStatement, type StatementTools } from '../statement.js';
import { UNFINISHED_STATUSES } from '../statuses.js';
import type { NewPromise, StateUpdate } from '../store.js';
import { equalsIfGiven } from './optional-filter.js';

// Statements that change or read one promise row. Status constants are written as SQL literals,
// not bound parameters: SQLite uses a partial index (`… WHERE status = 'pending'`) only when the
// query's own condition matches it literally.

/** Inserts a promise; a new pending row is claimable. */
export const insertPromise = defineStatement({ locks: 'none', wakes: true }, ({ db, p }: StatementTools<NewPromise>) =>
  db
    .insertInto('promises')
    .values({
      type: p('type'),
      status: p('status'),
      priority: p('priority'),
      payload: p('payload'),
      max_attempts: p('maxAttempts'),
      run_at: p('runAt'),
      snapshot: p('snapshot'),
      idempotency_key: p('idempotencyKey'),
      error_code: p('errorCode'),
      error_message: p('errorMessage'),
      workflow_id: p('workflowId'),
      invoke_id: p('invokeId'),
      flow_key: p('flowKey'),
      rate_key: p('rateKey'),
      trace_context: p('traceContext'),
      expire_in: p('expireIn'),
      start_by: p('startBy'),
      key_ttl: p('keyTtl'),
      debounce_key: p('debounceKey'),
      completed_at: sql<number | null>`case when ${p('status')} = 'failed' then ${p('now')} else null end`,
      created_at: p('now'),
      updated_at: p('now'),
    })
    .returning('id'),
);

/**
 * Applies a state change if the row is still in `fromStatus` (and holds the lease token, when
 * given). Wakes: it moves rows back to pending (a retry, a lease loss, a release) and finishes them.
 */
export const updateState = defineStatement({ locks: 'none', wakes: true }, ({ db, p }: StatementTools<StateUpdate>) =>
  db
    .updateTable('promises')
    .set((eb) => ({
      status: p('toStatus'),
      snapshot: p('snapshot'),
      result: p('result'),
      error_code: p('errorCode'),
      error_message: p('errorMessage'),
      run_at: eb.fn.coalesce(sql<number>`${p('runAt')}`, 'run_at'),
      attempts: sql<number>`case when ${p('resetAttempts')} = 1 then 0 else attempts - ${p('attemptsRefund')} end`,
      lease_losses: sql<number>`case when ${p('resetAttempts')} = 1 then 0 else lease_losses + ${p('leaseLost')} end`,
      // Every state change invalidates any claim still running on the old state.
      lease_token: eb('lease_token', '+', 1),
      lease_owner: null,
      lease_expires_at: null,
      completed_at: p('completedAt'),
      expires_at: p('expiresAt'),
      // A deadline is for a first start: a row moved by any event has started, or is failed (and
      // a manual retry of an expired promise is the operator's decision, given no new deadline).
      start_by: null,
      updated_at: p('now'),
    }))
    .where('id', '=', p('id'))
    .where('status', '=', p('fromStatus'))
    .where((eb) => eb.or([eb(sql`${p('leaseToken')}`, 'is', null), eb('lease_token', '=', sql<number>`${p('leaseToken')}`)])),
);

/** Rewrites a row's snapshot if it is still in `status` (a damaged snapshot repaired); its state does not change. */
export const repairSnapshot = defineStatement({ locks: 'none', wakes: false }, ({ db, p }: StatementTools<{ id: number; status: string; snapshot: string }>) =>
  db.updateTable('promises').set({ snapshot: p('snapshot') }).where('id', '=', p('id')).where('status', '=', p('status')),
);

/** Replaces a row's payload (a retry with an edited payload, in the retry's transaction). */
export const setPayload = defineStatement({ locks: 'none', wakes: false }, ({ db, p }: StatementTools<{ id: number; payload: string; now: number }>) =>
  db.updateTable('promises').set({ payload: p('payload'), updated_at: p('now') }).where('id', '=', p('id')),
);

/** The promise holding an idempotency key, with what decides whether the key is still remembered. */
export const keyHolder = defineStatement({ locks: 'none', wakes: false }, ({ db, p }: StatementTools<{ key: string }>) =>
  db.selectFrom('promises').select(['id', 'completed_at', 'key_ttl']).where('idempotency_key', '=', p('key')),
);

/** Lets go of a key whose time is up (its promise settled more than `key_ttl` ago): a new promise may take it. */
export const forgetKey = defineStatement({ locks: 'none', wakes: false }, ({ db, p }: StatementTools<{ id: number; key: string }>) =>
  db.updateTable('promises').set({ idempotency_key: null }).where('id', '=', p('id')).where('idempotency_key', '=', p('key')),
);

// Enqueue reads each parent's status, then inserts the edge. A parent completing or failing at
// the same time must either be seen finished here, or (waiting on this lock) see the new edge.
export const statusOf = defineStatement({ locks: 'share', wakes: false }, ({ db, p, lock }: StatementTools<{ id: number }>) =>
  lock(db.selectFrom('promises').select('status').where('id', '=', p('id'))),
);

// Cancel and retry read a row's state, then change it: lock it for the change from the start,
// rather than upgrading a shared lock (which deadlocks two such transactions).
export const stateOf = defineStatement({ locks: 'update', wakes: false }, ({ db, p, lock }: StatementTools<{ id: number }>) =>
  lock(db.selectFrom('promises').select(['status', 'type', 'attempts', 'workflow_id', 'invoke_id']).where('id', '=', p('id'))),
);

export const runAtOf = defineStatement({ locks: 'none', wakes: false }, ({ db, p }: StatementTools<{ id: number }>) =>
  db.selectFrom('promises').select('run_at').where('id', '=', p('id')),
);

export const getPromise = defineStatement({ locks: 'none', wakes: false }, ({ db, p }: StatementTools<{ id: number }>) =>
  db.selectFrom('promises').selectAll().where('id', '=', p('id')),
);

/** `(id, status, snapshot, lease_owner)` of every unfinished row, for resuming. */
export const unfinished = defineStatement({ locks: 'none', wakes: false }, ({ db }: StatementTools<Record<string, never>>) =>
  db
    .selectFrom('promises')
    .select(['id', 'status', 'snapshot', 'lease_owner'])
    .where('status', 'in', UNFINISHED_STATUSES.map((status) => sql.lit(status))),
);

/** Promises, newest first; `status` and `type` filter when given. */
export const listPromises = defineStatement(
  { locks: 'none', wakes: false },
  ({ db, p }: StatementTools<{ status: string | null; type: string | null; limit: number }>) =>
    db
      .selectFrom('promises')
      .selectAll()
      .where(equalsIfGiven('status', p('status')))
      .where(equalsIfGiven('type', p('type')))
      .orderBy('id', 'desc')
      .limit(p('limit')),
);
