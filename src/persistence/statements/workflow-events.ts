import { defineStatement, type StatementTools } from '../statement.js';
import type { NewWorkflowEvent } from '../store.js';

// External events sent to a workflow, each stored with the outcome its sender was told.

/** Stores an event; wakes, since the workflow may be run by another process. */
export const insertWorkflowEvent = defineStatement({ locks: 'none', wakes: true }, ({ db, p }: StatementTools<NewWorkflowEvent>) =>
  db
    .insertInto('workflow_events')
    .values({
      workflow_id: p('workflowId'),
      event: p('event'),
      type: p('type'),
      key: p('key'),
      outcome: p('outcome'),
      created_at: p('now'),
      applied_at: p('appliedAt'),
      expires_at: p('expiresAt'),
    })
    .returning('id'),
);

export const markWorkflowEventApplied = defineStatement({ locks: 'none', wakes: false }, ({ db, p }: StatementTools<{ id: number; now: number }>) =>
  db.updateTable('workflow_events').set({ applied_at: p('now') }).where('id', '=', p('id')),
);

/** Kept events not yet applied, discarded or lapsed, oldest first. */
export const keptWorkflowEvents = defineStatement({ locks: 'none', wakes: false }, ({ db, p }: StatementTools<{ workflowId: number; now: number }>) =>
  db
    .selectFrom('workflow_events')
    .select(['id', 'event', 'type', 'created_at', 'expires_at'])
    .where('workflow_id', '=', p('workflowId'))
    .where('outcome', '=', 'kept')
    .where('applied_at', 'is', null)
    .where('discarded_at', 'is', null)
    .where('expires_at', '>', p('now'))
    .orderBy('id'),
);

/** The event sent earlier with this key. */
export const workflowEventByKey = defineStatement({ locks: 'none', wakes: false }, ({ db, p }: StatementTools<{ workflowId: number; key: string }>) =>
  db.selectFrom('workflow_events').select(['id', 'outcome', 'expires_at']).where('workflow_id', '=', p('workflowId')).where('key', '=', p('key')),
);

/** When an event of this type was last applied to the workflow. */
export const lastAppliedEventAt = defineStatement({ locks: 'none', wakes: false }, ({ db, p }: StatementTools<{ workflowId: number; type: string }>) =>
  db
    .selectFrom('workflow_events')
    .select((eb) => eb.fn.max('applied_at').as('at'))
    .where('workflow_id', '=', p('workflowId'))
    .where('type', '=', p('type'))
    .where('applied_at', 'is not', null),
);

/** Discards one kept event (not applied, not discarded yet); quiet: nothing waits for a discard. */
export const discardWorkflowEvent = defineStatement(
  { locks: 'none', wakes: false },
  ({ db, p }: StatementTools<{ workflowId: number; id: number; reason: string; now: number }>) =>
    db
      .updateTable('workflow_events')
      .set({ discarded_at: p('now'), discard_reason: p('reason') })
      .where('workflow_id', '=', p('workflowId'))
      .where('id', '=', p('id'))
      .where('outcome', '=', 'kept')
      .where('applied_at', 'is', null)
      .where('discarded_at', 'is', null),
);

/** Discards every kept event of a workflow (it was cancelled). */
export const discardKeptEvents = defineStatement({ locks: 'none', wakes: false }, ({ db, p }: StatementTools<{ workflowId: number; reason: string; now: number }>) =>
  db
    .updateTable('workflow_events')
    .set({ discarded_at: p('now'), discard_reason: p('reason') })
    .where('workflow_id', '=', p('workflowId'))
    .where('outcome', '=', 'kept')
    .where('applied_at', 'is', null)
    .where('discarded_at', 'is', null),
);
