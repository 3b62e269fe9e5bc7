import { defineStatement, type StatementTools } from '../statement.js';

// The dependency edges: `child_id` waits for `parent_id`. The primary key (parent_id, child_id)
// finds a parent's children; the index promise_dependencies_child (child_id, parent_id) a child's
// parents.

export const insertDependency = defineStatement({ locks: 'none', wakes: false }, ({ db, p }: StatementTools<{ parentId: number; childId: number }>) =>
  db.insertInto('promise_dependencies').values({ parent_id: p('parentId'), child_id: p('childId') }).onConflict((oc) => oc.doNothing()),
);

export const parentsOf = defineStatement({ locks: 'none', wakes: false }, ({ db, p }: StatementTools<{ id: number }>) =>
  db.selectFrom('promise_dependencies').select('parent_id').where('child_id', '=', p('id')).orderBy('parent_id'),
);

export const parentsOfMany = defineStatement({ locks: 'none', wakes: false }, ({ db, p, inList }: StatementTools<{ ids: readonly number[] }>) =>
  db
    .selectFrom('promise_dependencies')
    .select(['child_id', 'parent_id'])
    .where(inList('child_id', p('ids')))
    .orderBy('child_id')
    .orderBy('parent_id'),
);

// A dependent's parents and their stored results (ctx.parents()), in one read; no lock, since a
// child runs only once every parent has completed, and a completed row's result never changes.
export const parentResultsOf = defineStatement({ locks: 'none', wakes: false }, ({ db, p }: StatementTools<{ id: number }>) =>
  db
    .selectFrom('promise_dependencies as d')
    .innerJoin('promises as parent', 'parent.id', 'd.parent_id')
    .select(['parent.id', 'parent.result'])
    .where('d.child_id', '=', p('id'))
    .orderBy('parent.id'),
);

export const childrenOf = defineStatement({ locks: 'none', wakes: false }, ({ db, p }: StatementTools<{ id: number }>) =>
  db.selectFrom('promise_dependencies').select('child_id').where('parent_id', '=', p('id')).orderBy('child_id'),
);

// Retrying a promise reads its parents' states to choose between waiting and pending; a parent
// completing meanwhile must be seen here, or (waiting on this lock) release the retried child.
export const parentStatesOf = defineStatement({ locks: 'share', wakes: false }, ({ db, p, lock }: StatementTools<{ id: number }>) =>
  lock(
    db
      .selectFrom('promise_dependencies as d')
      .innerJoin('promises as parent', 'parent.id', 'd.parent_id')
      .select(['parent.id', 'parent.status'])
      .where('d.child_id', '=', p('id'))
      .orderBy('parent.id'),
    'parent',
  ),
);
