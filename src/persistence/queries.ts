import { sql, type Kysely, type RawBuilder } from 'kysely';
import { prepareQuery } from './prepared.js';
import type { Database } from './schema.js';
import type { ClaimRequest, NewPromise, RelativesUpdate, StateUpdate } from './store.js';

const UNFINISHED = ['waiting', 'pending', 'in_progress'];

// Status constants are written as SQL literals, not bound parameters: SQLite uses a partial
// index (`… WHERE status = 'pending'`) only when the query's own condition matches it literally.

/** What differs between dialects in the statements below. */
export interface QueryCapabilities {
  /** PostgreSQL: claimers skip rows another transaction has locked instead of waiting on them. */
  skipLocked: boolean;
  /** `column IN (the list bound as one parameter)`: a JSON array on SQLite, `= ANY($n)` on PostgreSQL. */
  inBoundList(column: string, list: unknown): RawBuilder<boolean>;
}

/**
 * Every hot statement, built once with Kysely and bound by name (see {@link prepareQuery}).
 * One function per operation, named after what it does.
 */
export function buildQueries(db: Kysely<Database>, capabilities: QueryCapabilities) {
  /** The parents of the row `childId` refers to that have not completed (none: it is ready). */
  const unfinishedParentOf = (childId: 'child.id' | 'promises.id') =>
    db
      .selectFrom('promise_dependencies as d')
      .innerJoin('promises as parent', 'parent.id', 'd.parent_id')
      .select('d.parent_id')
      .whereRef('d.child_id', '=', childId as never)
      .where('parent.status', '!=', sql.lit('completed'));

  const insertPromise = prepareQuery<NewPromise>((p) =>
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
        completed_at: sql<number | null>`case when ${p('status')} = 'failed' then ${p('now')} else null end`,
        created_at: p('now'),
        updated_at: p('now'),
      })
      .returning('id'),
  );

  const insertDependency = prepareQuery<{ parentId: number; childId: number }>((p) =>
    db.insertInto('promise_dependencies').values({ parent_id: p('parentId'), child_id: p('childId') }).onConflict((oc) => oc.doNothing()),
  );

  const idByKey = prepareQuery<{ key: string }>((p) => db.selectFrom('promises').select('id').where('idempotency_key', '=', p('key')));

  const statusOf = prepareQuery<{ id: number }>((p) => db.selectFrom('promises').select('status').where('id', '=', p('id')));

  const runAtOf = prepareQuery<{ id: number }>((p) => db.selectFrom('promises').select('run_at').where('id', '=', p('id')));

  const stateOf = prepareQuery<{ id: number }>((p) => db.selectFrom('promises').select(['status', 'type', 'attempts', 'workflow_id', 'invoke_id']).where('id', '=', p('id')));

  const claimDue = prepareQuery<ClaimRequest>((p) => {
    let due = db
      .selectFrom('promises')
      .select('id')
      .where('status', '=', sql.lit('pending'))
      .where('run_at', '<=', p('dueBy'))
      .where(capabilities.inBoundList('type', p('types')))
      .orderBy('priority', 'desc')
      .orderBy('run_at')
      .orderBy('id')
      .limit(p('limit'));
    if (capabilities.skipLocked) due = due.forUpdate().skipLocked();
    return db
      .updateTable('promises')
      .set((eb) => ({
        status: p('toStatus'),
        snapshot: p('snapshot'),
        attempts: eb('attempts', '+', 1),
        lease_token: eb('lease_token', '+', 1),
        lease_owner: p('owner'),
        lease_expires_at: p('leaseExpiresAt'),
        started_at: eb.fn.coalesce('started_at', sql<number>`${p('now')}`),
        updated_at: p('now'),
      }))
      .where('id', 'in', due)
      .returning(['id', 'type', 'payload', 'priority', 'run_at', 'attempts', 'max_attempts', 'lease_token', 'workflow_id', 'invoke_id']);
  });

  const updateState = prepareQuery<StateUpdate>((p) =>
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
        updated_at: p('now'),
      }))
      .where('id', '=', p('id'))
      .where('status', '=', p('fromStatus'))
      .where((eb) => eb.or([eb(sql`${p('leaseToken')}`, 'is', null), eb('lease_token', '=', sql<number>`${p('leaseToken')}`)])),
  );

  // A waiting child is ready when none of its parents is anything but completed. The candidates
  // are found from the parent's edges inside the subquery, so the statement reads this parent's
  // children only, however many promises are waiting elsewhere.
  const releaseReadyChildren = prepareQuery<RelativesUpdate>((p) =>
    db
      .updateTable('promises')
      .set(relativeUpdate(p))
      .where('id', 'in', (qb) =>
        qb
          .selectFrom('promise_dependencies as edge')
          .innerJoin('promises as child', 'child.id', 'edge.child_id')
          .select('child.id')
          .where('edge.parent_id', '=', p('parentId'))
          .where('child.status', '=', sql.lit('waiting'))
          .where(({ not, exists }) => not(exists(unfinishedParentOf('child.id')))),
      )
      .returning(['id', 'type']),
  );

  const releaseAllReadyWaiting = prepareQuery<Omit<RelativesUpdate, 'parentId'>>((p) =>
    db
      .updateTable('promises')
      .set(relativeUpdate(p))
      .where('status', '=', sql.lit('waiting'))
      .where(({ not, exists }) => not(exists(unfinishedParentOf('promises.id'))))
      .returning(['id', 'type']),
  );

  const waitingWithFailedParent = prepareQuery<Record<string, never>>(() =>
    db
      .selectFrom('promises as child')
      .select(['child.id', 'child.type'])
      .where('child.status', '=', sql.lit('waiting'))
      .where(({ exists, selectFrom }) =>
        exists(
          selectFrom('promise_dependencies as d')
            .innerJoin('promises as parent', 'parent.id', 'd.parent_id')
            .select('d.parent_id')
            .whereRef('d.child_id', '=', 'child.id')
            .where('parent.status', '=', sql.lit('failed')),
        ),
      ),
  );

  const failWaitingDescendants = prepareQuery<RelativesUpdate>((p) =>
    db
      .withRecursive('descendants(id)', (qb) =>
        qb
          .selectFrom('promise_dependencies')
          .select('child_id as id')
          .where('parent_id', '=', p('parentId'))
          .union(
            qb
              .selectFrom('promise_dependencies as d')
              .innerJoin('descendants', 'descendants.id', 'd.parent_id')
              .select('d.child_id as id'),
          ),
      )
      .updateTable('promises')
      .set(relativeUpdate(p))
      .where('status', '=', sql.lit('waiting'))
      .where('id', 'in', (qb) => qb.selectFrom('descendants').select('descendants.id'))
      .returning(['id', 'type']),
  );

  // Retrying a parent brings back the descendants that failed only because of it.
  const reviveFailedDescendants = prepareQuery<RelativesUpdate>((p) =>
    db
      .withRecursive('descendants(id)', (qb) =>
        qb
          .selectFrom('promise_dependencies')
          .select('child_id as id')
          .where('parent_id', '=', p('parentId'))
          .union(qb.selectFrom('promise_dependencies as d').innerJoin('descendants', 'descendants.id', 'd.parent_id').select('d.child_id as id')),
      )
      .updateTable('promises')
      .set({ ...relativeUpdate(p), attempts: 0, lease_losses: 0, completed_at: null })
      .where('status', '=', sql.lit('failed'))
      .where('error_code', '=', sql.lit('DEPENDENCY_FAILED'))
      .where('id', 'in', (qb) => qb.selectFrom('descendants').select('descendants.id'))
      .returning(['id', 'type']),
  );

  const parentStatesOf = prepareQuery<{ id: number }>((p) =>
    db
      .selectFrom('promise_dependencies as d')
      .innerJoin('promises as parent', 'parent.id', 'd.parent_id')
      .select(['parent.id', 'parent.status'])
      .where('d.child_id', '=', p('id')),
  );

  const expiredLeases = prepareQuery<{ now: number; limit: number }>((p) =>
    db
      .selectFrom('promises')
      .select(['id', 'type', 'attempts', 'max_attempts', 'lease_token', 'lease_owner', 'lease_losses', 'workflow_id', 'invoke_id'])
      .where('status', '=', sql.lit('in_progress'))
      .where('lease_expires_at', '<', p('now'))
      .orderBy('lease_expires_at')
      .limit(p('limit')),
  );

  const leasesOwnedBy = prepareQuery<{ owner: string }>((p) =>
    db
      .selectFrom('promises')
      .select(['id', 'type', 'attempts', 'max_attempts', 'lease_token', 'lease_owner', 'lease_losses', 'workflow_id', 'invoke_id'])
      .where('status', '=', sql.lit('in_progress'))
      .where('lease_owner', '=', p('owner')),
  );

  const repairSnapshot = prepareQuery<{ id: number; status: string; snapshot: string }>((p) =>
    db.updateTable('promises').set({ snapshot: p('snapshot') }).where('id', '=', p('id')).where('status', '=', p('status')),
  );

  const renewLeases = prepareQuery<{ owner: string; leaseExpiresAt: number; now: number }>((p) =>
    db
      .updateTable('promises')
      .set({ lease_expires_at: p('leaseExpiresAt'), updated_at: p('now') })
      .where('status', '=', sql.lit('in_progress'))
      .where('lease_owner', '=', p('owner'))
      .returning(['id', 'lease_token']),
  );

  const saveProgress = prepareQuery<{ id: number; leaseToken: number; current: number; total: number; now: number }>((p) =>
    db
      .updateTable('promises')
      .set({ progress_current: p('current'), progress_total: p('total'), updated_at: p('now') })
      .where('id', '=', p('id'))
      .where('status', '=', sql.lit('in_progress'))
      .where('lease_token', '=', p('leaseToken')),
  );

  const getPromise = prepareQuery<{ id: number }>((p) => db.selectFrom('promises').selectAll().where('id', '=', p('id')));

  const dependenciesOf = prepareQuery<{ id: number }>((p) =>
    db.selectFrom('promise_dependencies').select('parent_id').where('child_id', '=', p('id')).orderBy('parent_id'),
  );

  const nextRunAt = prepareQuery<{ types: readonly string[] }>((p) =>
    db
      .selectFrom('promises')
      .select((eb) => eb.fn.min('run_at').as('at'))
      .where('status', '=', sql.lit('pending'))
      .where(capabilities.inBoundList('type', p('types'))),
  );

  const nextLeaseExpiry = prepareQuery<Record<string, never>>(() =>
    db.selectFrom('promises').select((eb) => eb.fn.min('lease_expires_at').as('at')).where('status', '=', sql.lit('in_progress')),
  );

  const unfinished = prepareQuery<Record<string, never>>(() =>
    db.selectFrom('promises').select(['id', 'status', 'snapshot', 'lease_owner']).where('status', 'in', UNFINISHED.map((status) => sql.lit(status))),
  );

  return {
    insertPromise,
    insertDependency,
    idByKey,
    statusOf,
    stateOf,
    runAtOf,
    claimDue,
    updateState,
    releaseReadyChildren,
    releaseAllReadyWaiting,
    waitingWithFailedParent,
    failWaitingDescendants,
    reviveFailedDescendants,
    parentStatesOf,
    expiredLeases,
    leasesOwnedBy,
    repairSnapshot,
    renewLeases,
    saveProgress,
    getPromise,
    dependenciesOf,
    nextRunAt,
    nextLeaseExpiry,
    unfinished,
  };
}

export type Queries = ReturnType<typeof buildQueries>;

function relativeUpdate(p: (name: 'toStatus' | 'snapshot' | 'errorCode' | 'errorMessage' | 'expiresAt' | 'now') => any) {
  return {
    status: p('toStatus'),
    snapshot: p('snapshot'),
    error_code: p('errorCode'),
    error_message: p('errorMessage'),
    expires_at: p('expiresAt'),
    completed_at: sql<number | null>`case when ${p('toStatus')} = 'failed' then ${p('now')} else null end`,
    updated_at: p('now'),
  };
}
