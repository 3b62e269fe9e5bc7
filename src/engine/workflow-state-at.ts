import { InvalidOptionError, NotFoundError } from '../errors.js';
import { parseId } from '../kernel/records.js';
import type { Store } from '../persistence/store.js';
import { toTransition } from '../workflows/workflow-history.js';
import type { WorkflowTransition } from '../workflows/workflow-types.js';

/** A workflow as it was right after one of its transitions (time travel over its history). */
export interface WorkflowStateAt extends WorkflowTransition {
  /** The machine's context after the transition. */
  context: unknown;
}

/** The stored snapshot after transition `seq` of workflow `id`: `NOT_FOUND` for an unknown id or seq. */
export async function readWorkflowStateAt(store: Store, id: string, seq: number): Promise<WorkflowStateAt> {
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 1) throw new InvalidOptionError('seq', seq, 'a transition number from 1 (see workflowHistory)');
  const workflowId = parseId(id);
  const row = workflowId === undefined ? undefined : await store.workflowTransitionAt(workflowId, seq);
  if (!row) throw new NotFoundError(`${String(id)}@${seq}`, 'workflow transition');
  const snapshot = JSON.parse(row.snapshot) as { context?: unknown };
  return { ...toTransition(row), context: snapshot.context ?? null };
}
