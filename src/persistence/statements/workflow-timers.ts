import { defineStatement, type StatementTools } from '../statement.js';

// Durable timers of workflows (XState keeps `after` timers only in memory). Arming and firing one
// wakes: every process arms its one timer for the earliest due time.

export const upsertWorkflowTimer = defineStatement(
  { locks: 'none', wakes: true },
  ({ db, p }: StatementTools<{ workflowId: number; timerId: string; event: string; fireAt: number; now: number }>) =>
    db
      .insertInto('workflow_timers')
      .values({ workflow_id: p('workflowId'), timer_id: p('timerId'), event: p('event'), fire_at: p('fireAt'), created_at: p('now') })
      .onConflict((oc) => oc.columns(['workflow_id', 'timer_id']).doUpdateSet({ event: p('event'), fire_at: p('fireAt'), created_at: p('now') })),
);

export const deleteWorkflowTimer = defineStatement({ locks: 'none', wakes: true }, ({ db, p }: StatementTools<{ workflowId: number; timerId: string }>) =>
  db.deleteFrom('workflow_timers').where('workflow_id', '=', p('workflowId')).where('timer_id', '=', p('timerId')),
);

/** Deletes every timer of a finished workflow. Quiet: a process armed for one finds none due when it fires, and re-arms. */
export const deleteWorkflowTimers = defineStatement({ locks: 'none', wakes: false }, ({ db, p }: StatementTools<{ workflowId: number }>) =>
  db.deleteFrom('workflow_timers').where('workflow_id', '=', p('workflowId')),
);

/** Holds a paused workflow's timers, as its steps are held (see holdPendingSteps). */
export const holdWorkflowTimers = defineStatement({ locks: 'none', wakes: false }, ({ db, p }: StatementTools<{ workflowId: number; offset: number }>) =>
  db
    .updateTable('workflow_timers')
    .set((eb) => ({ fire_at: eb('fire_at', '+', p('offset')) }))
    .where('workflow_id', '=', p('workflowId'))
    .where('fire_at', '<', p('offset')),
);

export const releaseWorkflowTimers = defineStatement({ locks: 'none', wakes: true }, ({ db, p }: StatementTools<{ workflowId: number; offset: number }>) =>
  db
    .updateTable('workflow_timers')
    .set((eb) => ({ fire_at: eb('fire_at', '-', p('offset')) }))
    .where('workflow_id', '=', p('workflowId'))
    .where('fire_at', '>=', p('offset')),
);

/** The timers set for one workflow. */
export const timersOf = defineStatement({ locks: 'none', wakes: false }, ({ db, p }: StatementTools<{ workflowId: number }>) =>
  db.selectFrom('workflow_timers').selectAll().where('workflow_id', '=', p('workflowId')).orderBy('fire_at'),
);

export const dueWorkflowTimers = defineStatement({ locks: 'none', wakes: false }, ({ db, p }: StatementTools<{ now: number; limit: number }>) =>
  db.selectFrom('workflow_timers').selectAll().where('fire_at', '<=', p('now')).orderBy('fire_at').limit(p('limit')),
);

export const nextWorkflowTimerAt = defineStatement({ locks: 'none', wakes: false }, ({ db }: StatementTools<Record<string, never>>) =>
  db.selectFrom('workflow_timers').select((eb) => eb.fn.min('fire_at').as('at')),
);
