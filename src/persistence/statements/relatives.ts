import { sql, type Kysely } from 'kysely';
import type { Database } from '../schema.js';
import { defineStatement, type StatementTools } from '../statement.js';
import type { RelativesUpdate } from '../store.js';

// Bulk transitions of promises chosen by their relation to a parent (its children, its
// descendants), and the reads that resuming makes of the same relations.

type Relatives = Omit<RelativesUpdate, 'parentId'>;

// Two parents of one child completing at once: each would see the other unfinished and neither
// would release the child. Locking the children first (in id order, against deadlocks) makes
// the second wait, and its release statement then sees both parents completed.
export const lockWaitingChildren = defineStatement({ locks: 'update', wakes: false }, ({ db, p, lock }: StatementTools<{ parentId: number }>) =>
  lock(
    db
      .selectFrom('promises')
      .select('id')
      .where('id', 'in', db.selectFrom('promise_dependencies').select('child_id').where('parent_id', '=', p('parentId')))
      .where('status', '=', sql.lit('waiting'))
      .orderBy('id'),
  ),
);

// A waiting child is ready when none of its parents is anything but completed. The candidates
// are found from the parent's edges inside the subquery, so the statement reads this parent's
// children only, however many promises are waiting elsewhere.
export const releaseReadyChildren = defineStatement({ locks: 'none', wakes: true }, ({ db, p }: StatementTools<RelativesUpdate>) =>
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
        .where(({ not, exists }) => not(exists(unfinishedParentOf(db, 'child.id')))),
    )
    .returning(['id', 'type']),
);

export const releaseAllReadyWaiting = defineStatement({ locks: 'none', wakes: true }, ({ db, p }: StatementTools<Relatives>) =>
  db
    .updateTable('promises')
    .set(relativeUpdate(p))
    .where('status', '=', sql.lit('waiting'))
    .where(({ not, exists }) => not(exists(unfinishedParentOf(db, 'promises.id'))))
    .returning(['id', 'type']),
);

export const waitingWithFailedParent = defineStatement({ locks: 'none', wakes: false }, ({ db }: StatementTools<Record<string, never>>) =>
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

/** Fails every waiting descendant of a parent, transitively; wakes the result waiters of each. */
export const failWaitingDescendants = defineStatement({ locks: 'none', wakes: true }, ({ db, p }: StatementTools<RelativesUpdate>) =>
  withDescendantsOf(db, p('parentId'))
    .updateTable('promises')
    .set(relativeUpdate(p))
    .where('status', '=', sql.lit('waiting'))
    .where('id', 'in', (qb) => qb.selectFrom('descendants').select('descendants.id'))
    .returning(['id', 'type']),
);

// Retrying a parent brings back the descendants that failed only because of it.
export const reviveFailedDescendants = defineStatement({ locks: 'none', wakes: true }, ({ db, p }: StatementTools<RelativesUpdate>) =>
  withDescendantsOf(db, p('parentId'))
    .updateTable('promises')
    .set({ ...relativeUpdate(p), attempts: 0, lease_losses: 0, completed_at: null })
    .where('status', '=', sql.lit('failed'))
    .where('error_code', '=', sql.lit('DEPENDENCY_FAILED'))
    .where('id', 'in', (qb) => qb.selectFrom('descendants').select('descendants.id'))
    .returning(['id', 'type']),
);

/** The parents of the row `childId` refers to that have not completed (none: it is ready). */
function unfinishedParentOf(db: Kysely<Database>, childId: 'child.id' | 'promises.id') {
  return db
    .selectFrom('promise_dependencies as d')
    .innerJoin('promises as parent', 'parent.id', 'd.parent_id')
    .select('d.parent_id')
    .whereRef('d.child_id', '=', childId as never)
    .where('parent.status', '!=', sql.lit('completed'));
}

/** `descendants(id)`: every row reachable from `parentId` along the edges. */
function withDescendantsOf(db: Kysely<Database>, parentId: number) {
  return db.withRecursive('descendants(id)', (qb) =>
    qb
      .selectFrom('promise_dependencies')
      .select('child_id as id')
      .where('parent_id', '=', parentId)
      .union(qb.selectFrom('promise_dependencies as d').innerJoin('descendants', 'descendants.id', 'd.parent_id').select('d.child_id as id')),
  );
}

function relativeUpdate(p: (name: 'toStatus' | 'snapshot' | 'errorCode' | 'errorMessage' | 'expiresAt' | 'now') => any) {
  return {
    status: p('toStatus'),
    snapshot: p('snapshot'),
    error_code: p('errorCode'),
    error_message: p('errorMessage'),
    expires_at: p('expiresAt'),
    completed_at: sql<number | null>`case when ${p('toStatus')} = 'failed' then ${p('now')} else null end`,
    // Released to pending: runnable from now (or its run-at, if later), so its deadline counts from then.
    start_by: sql<number | null>`case when ${p('toStatus')} = 'pending' and expire_in is not null then (case when run_at > ${p('now')} then run_at else ${p('now')} end) + expire_in else null end`,
    updated_at: p('now'),
  };
}
