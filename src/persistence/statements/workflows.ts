import { defineStatement, type StatementTools } from '../statement.js';
import type { NewWorkflow, WorkflowUpdate } from '../store.js';
import { equalsIfGiven } from './optional-filter.js';

// Workflow rows, and the step promises that belong to them. Writes wake: a workflow's waiters
// and its parent step may live in another process.



/**
 * Inserts a workflow; returns no row when its key is taken. On PostgreSQL a start with the same
 * key in another transaction waits for it here, then returns nothing instead of failing.
 */
export const insertWorkflow = defineStatement({ locks: 'none', wakes: true }, ({ db, p }: StatementTools<NewWorkflow>) =>
  db
    .insertInto('workflows')
    .values({
      name: p('name'),
      status: 'running',
      input: p('input'),
      snapshot: p('snapshot'),
      version: p('version'),
      parent_step_id: p('parentStepId'),
      key: p('key'),
      restarted_from: p('restartedFrom'),
      restarted_from_seq: p('restartedFromSeq'),
      trace_context: p('traceContext'),
      created_at: p('now'),
      updated_at: p('now'),
    })
    .onConflict((oc) => oc.column('key').doNothing())
    .returning('id'),
);

export const saveWorkflow = defineStatement({ locks: 'none', wakes: true }, ({ db, p }: StatementTools<WorkflowUpdate>) =>
  db
    .updateTable('workflows')
    .set({
      status: p('status'),
      snapshot: p('snapshot'),
      output: p('output'),
      error_code: p('errorCode'),
      error_message: p('errorMessage'),
      completed_at: p('completedAt'),
      seq: p('seq'),
      updated_at: p('now'),
    })
    .where('id', '=', p('id')),
);

/** The machine version a migration moved a workflow to. */
export const setWorkflowVersion = defineStatement({ locks: 'none', wakes: false }, ({ db, p }: StatementTools<{ id: number; version: string }>) =>
  db.updateTable('workflows').set({ version: p('version') }).where('id', '=', p('id')),
);

/**
 * A migration hands the steps of one invocation to the invocation of the new state that runs
 * the same actor (the one settling in this very transaction, too: its outcome is then that
 * invocation's).
 */
export const reassignStepInvocation = defineStatement(
  { locks: 'none', wakes: false },
  ({ db, p }: StatementTools<{ workflowId: number; from: string; to: string; now: number }>) =>
    db
      .updateTable('promises')
      .set({ invoke_id: p('to'), updated_at: p('now') })
      .where('workflow_id', '=', p('workflowId'))
      .where('invoke_id', '=', p('from')),
);

/** Marks a workflow as compensating a cancel. */
export const markCancelRequested = defineStatement({ locks: 'none', wakes: true }, ({ db, p }: StatementTools<{ id: number; now: number }>) =>
  db.updateTable('workflows').set({ cancel_requested_at: p('now'), updated_at: p('now') }).where('id', '=', p('id')),
);

/** Sets or clears when a workflow was paused. */
export const setWorkflowPaused = defineStatement({ locks: 'none', wakes: true }, ({ db, p }: StatementTools<{ id: number; pausedAt: number | null; now: number }>) =>
  db.updateTable('workflows').set({ paused_at: p('pausedAt'), updated_at: p('now') }).where('id', '=', p('id')),
);

// A paused workflow's pending steps are held by moving their run-at `offset` ms ahead (past any
// real time); releasing takes the offset back off, so a step keeps what was left of its delay.
// Holding is quiet (it only takes rows out of the claimable set); releasing wakes claimers.

export const holdPendingSteps = defineStatement({ locks: 'none', wakes: false }, ({ db, p }: StatementTools<{ workflowId: number; offset: number; now: number }>) =>
  db
    .updateTable('promises')
    // A held step's start deadline moves with it: a paused workflow's steps do not expire.
    .set((eb) => ({ run_at: eb('run_at', '+', p('offset')), start_by: eb('start_by', '+', p('offset')), updated_at: p('now') }))
    .where('workflow_id', '=', p('workflowId'))
    .where('status', '=', 'pending')
    .where('run_at', '<', p('offset')),
);

export const releaseHeldSteps = defineStatement({ locks: 'none', wakes: true }, ({ db, p }: StatementTools<{ workflowId: number; offset: number; now: number }>) =>
  db
    .updateTable('promises')
    .set((eb) => ({ run_at: eb('run_at', '-', p('offset')), start_by: eb('start_by', '-', p('offset')), updated_at: p('now') }))
    .where('workflow_id', '=', p('workflowId'))
    .where('status', '=', 'pending')
    .where('run_at', '>=', p('offset')),
);

export const getWorkflow = defineStatement({ locks: 'none', wakes: false }, ({ db, p }: StatementTools<{ id: number }>) =>
  db.selectFrom('workflows').selectAll().where('id', '=', p('id')),
);

// A workflow's snapshot is read, advanced by a transition, and written back: two steps of one
// workflow finishing at once in two processes must not both start from the same snapshot.
export const getWorkflowForUpdate = defineStatement({ locks: 'update', wakes: false }, ({ db, p, lock }: StatementTools<{ id: number }>) =>
  lock(db.selectFrom('workflows').selectAll().where('id', '=', p('id'))),
);

export const runningWorkflows = defineStatement({ locks: 'none', wakes: false }, ({ db }: StatementTools<Record<string, never>>) =>
  db.selectFrom('workflows').select(['id', 'name', 'version']).where('status', '=', 'running'),
);

/** The workflow started with an idempotency key. */
export const workflowByKey = defineStatement({ locks: 'none', wakes: false }, ({ db, p }: StatementTools<{ key: string }>) =>
  db.selectFrom('workflows').select(['id', 'name']).where('key', '=', p('key')),
);

export const workflowOfParentStep = defineStatement({ locks: 'none', wakes: false }, ({ db, p }: StatementTools<{ stepId: number }>) =>
  db.selectFrom('workflows').select('id').where('parent_step_id', '=', p('stepId')),
);

/** Step promises of a workflow, oldest first. */
export const stepsOf = defineStatement({ locks: 'none', wakes: false }, ({ db, p }: StatementTools<{ workflowId: number }>) =>
  db.selectFrom('promises').selectAll().where('workflow_id', '=', p('workflowId')).orderBy('id'),
);

/** The newest step promise of one invocation of a workflow. */
export const latestStepOf = defineStatement({ locks: 'none', wakes: false }, ({ db, p }: StatementTools<{ workflowId: number; invokeId: string }>) =>
  db.selectFrom('promises').select('id').where('workflow_id', '=', p('workflowId')).where('invoke_id', '=', p('invokeId')).orderBy('id', 'desc').limit(1),
);

/** Workflows, newest first; `status` and `name` filter when given. */
export const listWorkflows = defineStatement(
  { locks: 'none', wakes: false },
  ({ db, p }: StatementTools<{ status: string | null; name: string | null; limit: number }>) =>
    db
      .selectFrom('workflows')
      .selectAll()
      .where(equalsIfGiven('status', p('status')))
      .where(equalsIfGiven('name', p('name')))
      .orderBy('id', 'desc')
      .limit(p('limit')),
);
