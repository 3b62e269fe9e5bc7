import { defineStatement, type StatementTools } from '../statement.js';

// External events sent to a workflow, stored before they are applied.

/** Stores an event; wakes, since the workflow may be run by another process. */
export const insertWorkflowEvent = defineStatement({ locks: 'none', wakes: true }, ({ db, p }: StatementTools<{ workflowId: number; event: string; now: number }>) =>
  db.insertInto('workflow_events').values({ workflow_id: p('workflowId'), event: p('event'), created_at: p('now') }).returning('id'),
);

export const markWorkflowEventApplied = defineStatement({ locks: 'none', wakes: false }, ({ db, p }: StatementTools<{ id: number; now: number }>) =>
  db.updateTable('workflow_events').set({ applied_at: p('now') }).where('id', '=', p('id')),
);

export const unappliedWorkflowEvents = defineStatement({ locks: 'none', wakes: false }, ({ db, p }: StatementTools<{ workflowId: number }>) =>
  db.selectFrom('workflow_events').select(['id', 'event']).where('workflow_id', '=', p('workflowId')).where('applied_at', 'is', null).orderBy('id'),
);
