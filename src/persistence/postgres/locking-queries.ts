import { sql, type Kysely } from 'kysely';
import { prepareQuery } from '../prepared.js';
import type { Database } from '../schema.js';

/**
 * The reads that PostgreSQL must lock, where SQLite needs nothing because it runs one write
 * transaction at a time. Under READ COMMITTED two transactions can each read what the other is
 * about to change (write skew); each lock below makes the later of two such transactions wait for
 * the earlier's commit, after which its next statement sees what the earlier one wrote.
 */
export function buildLockingQueries(db: Kysely<Database>) {
  // Enqueue reads each parent's status, then inserts the edge. A parent completing or failing at
  // the same time must either be seen finished here, or (waiting on this lock) see the new edge.
  const statusOfShared = prepareQuery<{ id: number }>((p) => db.selectFrom('promises').select('status').where('id', '=', p('id')).forShare());

  // Cancel and retry read a row's state, then change it: lock it for the change from the start,
  // rather than upgrading a shared lock (which deadlocks two such transactions).
  const stateOfForUpdate = prepareQuery<{ id: number }>((p) =>
    db.selectFrom('promises').select(['status', 'type', 'attempts', 'workflow_id', 'invoke_id']).where('id', '=', p('id')).forUpdate(),
  );

  // Two parents of one child completing at once: each would see the other unfinished and neither
  // would release the child. Locking the children first (in id order, against deadlocks) makes
  // the second wait, and its release statement then sees both parents completed.
  const lockWaitingChildren = prepareQuery<{ parentId: number }>((p) =>
    db
      .selectFrom('promises')
      .select('id')
      .where('id', 'in', db.selectFrom('promise_dependencies').select('child_id').where('parent_id', '=', p('parentId')))
      .where('status', '=', sql.lit('waiting'))
      .orderBy('id')
      .forUpdate(),
  );

  // Retrying a promise reads its parents' states to choose between waiting and pending; a parent
  // completing meanwhile must be seen here, or (waiting on this lock) release the retried child.
  const parentStatesOfShared = prepareQuery<{ id: number }>((p) =>
    db
      .selectFrom('promise_dependencies as d')
      .innerJoin('promises as parent', 'parent.id', 'd.parent_id')
      .select(['parent.id', 'parent.status'])
      .where('d.child_id', '=', p('id'))
      .orderBy('parent.id')
      .forShare('parent'),
  );

  // A workflow's snapshot is read, advanced by a transition, and written back: two steps of one
  // workflow finishing at once in two processes must not both start from the same snapshot.
  const getWorkflowForUpdate = prepareQuery<{ id: number }>((p) => db.selectFrom('workflows').selectAll().where('id', '=', p('id')).forUpdate());

  return { statusOfShared, stateOfForUpdate, lockWaitingChildren, parentStatesOfShared, getWorkflowForUpdate };
}

export type LockingQueries = ReturnType<typeof buildLockingQueries>;
