import type { Kysely } from 'kysely';
import { prepareQuery } from './prepared.js';
import type { Database } from './schema.js';

/** Statements for workflows: their rows, their stored external events and their durable timers. */
export function buildWorkflowQueries(db: Kysely<Database>) {
  const insertWorkflow = prepareQuery<{ name: string; input: string; snapshot: string; version: string; parentStepId: number | null; now: number }>((p) =>
    db
      .insertInto('workflows')
      .values({
        name: p('name'),
        status: 'running',
        input: p('input'),
        snapshot: p('snapshot'),
        version: p('version'),
        parent_step_id: p('parentStepId'),
        created_at: p('now'),
        updated_at: p('now'),
      })
      .returning('id'),
  );

  const getWorkflow = prepareQuery<{ id: number }>((p) => db.selectFrom('workflows').selectAll().where('id', '=', p('id')));

  const saveWorkflow = prepareQuery<{
    id: number;
    status: string;
    snapshot: string;
    output: string | null;
    errorCode: string | null;
    errorMessage: string | null;
    completedAt: number | null;
    now: number;
  }>((p) =>
    db
      .updateTable('workflows')
      .set({
        status: p('status'),
        snapshot: p('snapshot'),
        output: p('output'),
        error_code: p('errorCode'),
        error_message: p('errorMessage'),
        completed_at: p('completedAt'),
        updated_at: p('now'),
      })
      .where('id', '=', p('id')),
  );

  const insertEvent = prepareQuery<{ workflowId: number; event: string; now: number }>((p) =>
    db.insertInto('workflow_events').values({ workflow_id: p('workflowId'), event: p('event'), created_at: p('now') }).returning('id'),
  );

  const markEventApplied = prepareQuery<{ id: number; now: number }>((p) => db.updateTable('workflow_events').set({ applied_at: p('now') }).where('id', '=', p('id')));

  const unappliedEvents = prepareQuery<{ workflowId: number }>((p) =>
    db.selectFrom('workflow_events').select(['id', 'event']).where('workflow_id', '=', p('workflowId')).where('applied_at', 'is', null).orderBy('id'),
  );

  const upsertTimer = prepareQuery<{ workflowId: number; timerId: string; event: string; fireAt: number }>((p) =>
    db
      .insertInto('workflow_timers')
      .values({ workflow_id: p('workflowId'), timer_id: p('timerId'), event: p('event'), fire_at: p('fireAt') })
      .onConflict((oc) => oc.columns(['workflow_id', 'timer_id']).doUpdateSet({ event: p('event'), fire_at: p('fireAt') })),
  );

  const deleteTimer = prepareQuery<{ workflowId: number; timerId: string }>((p) =>
    db.deleteFrom('workflow_timers').where('workflow_id', '=', p('workflowId')).where('timer_id', '=', p('timerId')),
  );

  const deleteTimersOf = prepareQuery<{ workflowId: number }>((p) => db.deleteFrom('workflow_timers').where('workflow_id', '=', p('workflowId')));

  const dueTimers = prepareQuery<{ now: number; limit: number }>((p) =>
    db.selectFrom('workflow_timers').selectAll().where('fire_at', '<=', p('now')).orderBy('fire_at').limit(p('limit')),
  );

  const nextTimerAt = prepareQuery<Record<string, never>>(() => db.selectFrom('workflow_timers').select((eb) => eb.fn.min('fire_at').as('at')));

  const stepsOf = prepareQuery<{ workflowId: number }>((p) => db.selectFrom('promises').selectAll().where('workflow_id', '=', p('workflowId')).orderBy('id'));

  const workflowOfParentStep = prepareQuery<{ stepId: number }>((p) => db.selectFrom('workflows').select('id').where('parent_step_id', '=', p('stepId')));

  const latestStepOf = prepareQuery<{ workflowId: number; invokeId: string }>((p) =>
    db
      .selectFrom('promises')
      .select('id')
      .where('workflow_id', '=', p('workflowId'))
      .where('invoke_id', '=', p('invokeId'))
      .orderBy('id', 'desc')
      .limit(1),
  );

  const runningWorkflows = prepareQuery<Record<string, never>>(() => db.selectFrom('workflows').select(['id', 'name', 'version']).where('status', '=', 'running'));

  return {
    insertWorkflow,
    getWorkflow,
    saveWorkflow,
    insertEvent,
    markEventApplied,
    unappliedEvents,
    upsertTimer,
    deleteTimer,
    deleteTimersOf,
    dueTimers,
    nextTimerAt,
    stepsOf,
    runningWorkflows,
    workflowOfParentStep,
    latestStepOf,
  };
}

export type WorkflowQueries = ReturnType<typeof buildWorkflowQueries>;
