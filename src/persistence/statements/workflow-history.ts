import { defineStatement, type StatementTools } from '../statement.js';
import type { WorkflowHistoryRow } from '../schema.js';

// The transitions of workflows, appended in the transaction of each. Quiet: nothing waits for
// a history line (the transition's own statements wake whoever must be woken).

export const insertWorkflowTransition = defineStatement({ locks: 'none', wakes: false }, ({ db, p }: StatementTools<WorkflowHistoryRow>) =>
  db.insertInto('workflow_history').values({
    workflow_id: p('workflow_id'),
    seq: p('seq'),
    event: p('event'),
    from_value: p('from_value'),
    to_value: p('to_value'),
    status: p('status'),
    snapshot: p('snapshot'),
    version: p('version'),
    timers: p('timers'),
    at: p('at'),
  }),
);

/** A workflow's transitions, in order, without their snapshots. */
export const workflowTransitions = defineStatement({ locks: 'none', wakes: false }, ({ db, p }: StatementTools<{ workflowId: number }>) =>
  db.selectFrom('workflow_history').select(['seq', 'event', 'from_value', 'to_value', 'status', 'at']).where('workflow_id', '=', p('workflowId')).orderBy('seq'),
);

/** One transition, with the snapshot after it. */
export const workflowTransition = defineStatement({ locks: 'none', wakes: false }, ({ db, p }: StatementTools<{ workflowId: number; seq: number }>) =>
  db.selectFrom('workflow_history').selectAll().where('workflow_id', '=', p('workflowId')).where('seq', '=', p('seq')),
);
