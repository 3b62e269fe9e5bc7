import { defineStatement, type StatementTools } from '../statement.js';
import { equalsIfGiven } from './optional-filter.js';

// The index of what running workflows wait for, rewritten with each transition. Quiet: nothing
// is woken by it (the transition's own statements wake).

export const clearAwaiting = defineStatement({ locks: 'none', wakes: false }, ({ db, p }: StatementTools<{ workflowId: number }>) =>
  db.deleteFrom('workflow_awaiting').where('workflow_id', '=', p('workflowId')),
);

export const insertAwaiting = defineStatement({ locks: 'none', wakes: false }, ({ db, p }: StatementTools<{ workflowId: number; eventType: string }>) =>
  db.insertInto('workflow_awaiting').values({ workflow_id: p('workflowId'), event_type: p('eventType') }),
);

/** Running workflows whose current state has a transition for one of `types`, newest first. */
export const listAwaitingWorkflows = defineStatement(
  { locks: 'none', wakes: false },
  ({ db, p, inList }: StatementTools<{ types: readonly string[]; name: string | null; limit: number }>) =>
    db
      .selectFrom('workflows')
      .selectAll()
      .where('id', 'in', db.selectFrom('workflow_awaiting').select('workflow_id').where(inList('event_type', p('types'))))
      .where('status', '=', 'running')
      .where(equalsIfGiven('name', p('name')))
      .orderBy('id', 'desc')
      .limit(p('limit')),
);
