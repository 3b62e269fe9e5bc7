import { InvalidOptionError, NotFoundError, PromiseFailedError } from '../errors.js';
import { fromJsonText } from '../json.js';
import type { PersistedWorkflowSnapshot } from '../machines/workflow-machine.js';
import type { WorkflowRow } from '../persistence/schema.js';
import type { Store } from '../persistence/store.js';
import { integerIn } from '../kernel/options.js';
import { parseId, toRecord } from '../kernel/records.js';
import { matchingEventTypes } from './event-reachability.js';
import { storableKey } from './workflow-input.js';
import { WORKFLOW_STATUSES, type WorkflowEvent, type WorkflowRecord, type WorkflowSummary } from './workflow-types.js';

/** Filter for {@link listWorkflows}. */
export interface WorkflowFilter {
  status?: WorkflowRecord['status'];
  name?: string;
  /**
   * Only running workflows whose current state has a transition for this event type (guards are
   * not evaluated), answered from an index written with each transition.
   */
  awaiting?: string;
  limit?: number;
}

/** Workflows without their steps and kept events, newest first. */
export async function listWorkflows(store: Store, filter: WorkflowFilter = {}): Promise<WorkflowSummary[]> {
  if (filter.status !== undefined && !WORKFLOW_STATUSES.includes(filter.status)) {
    throw new InvalidOptionError('status', filter.status, WORKFLOW_STATUSES.join(' | '));
  }
  const limit = integerIn('limit', filter.limit ?? 100, 1, 10_000);
  if (filter.awaiting !== undefined) {
    const types = matchingEventTypes(storableKey('awaiting', filter.awaiting));
    if (filter.status !== undefined && filter.status !== 'running') return [];
    return (await store.listAwaitingWorkflows({ types, name: filter.name, limit })).map((row) => summaryOf(row));
  }
  const rows = await store.listWorkflows({ status: filter.status, name: filter.name, limit });
  return rows.map((row) => summaryOf(row));
}

/** The workflow with this id, its steps and kept events, or `undefined`. */
export async function readWorkflow(store: Store, id: string, now: number): Promise<WorkflowRecord | undefined> {
  const workflowId = parseId(id);
  if (workflowId === undefined) return undefined;
  const row = await store.getWorkflow(workflowId);
  if (!row) return undefined;
  const steps = await store.stepsOf(workflowId);
  const parents = await store.dependenciesOfMany(steps.map((step) => step.id));
  const kept = row.status === 'running' ? await store.keptWorkflowEvents(workflowId, now) : [];
  return {
    ...summaryOf(row),
    steps: steps.map((step) => toRecord(step, parents.get(step.id) ?? [])),
    keptEvents: kept.map((event) => ({ id: String(event.id), event: JSON.parse(event.event) as WorkflowEvent, keptAt: new Date(event.created_at), expiresAt: new Date(event.expires_at!) })),
  };
}

/** `{ value }` (the output) once completed; throws once failed or when missing; `undefined` while running. */
export async function settledOutput(store: Store, id: number): Promise<{ value: unknown } | undefined> {
  const row = await store.getWorkflow(id);
  if (!row) throw new NotFoundError(String(id), 'workflow');
  if (row.status === 'completed') return { value: fromJsonText(row.output) };
  if (row.status === 'failed') throw new PromiseFailedError(String(id), { code: row.error_code ?? 'WORKFLOW_ERROR', message: row.error_message ?? '' });
  return undefined;
}

function summaryOf(row: WorkflowRow): WorkflowSummary {
  const snapshot = JSON.parse(row.snapshot) as PersistedWorkflowSnapshot;
  return {
    id: String(row.id),
    name: row.name,
    status: row.status as WorkflowRecord['status'],
    value: snapshot.value,
    context: snapshot.context,
    output: fromJsonText(row.output),
    error: row.error_code === null ? null : { code: row.error_code, message: row.error_message ?? '' },
    key: row.key,
    version: row.version,
    cancelRequestedAt: row.cancel_requested_at === null ? null : new Date(row.cancel_requested_at),
    pausedAt: row.paused_at === null ? null : new Date(row.paused_at),
    restartedFrom: row.restarted_from === null ? null : { id: String(row.restarted_from), seq: row.restarted_from_seq ?? 0 },
    createdAt: new Date(row.created_at),
    completedAt: row.completed_at === null ? null : new Date(row.completed_at),
  };
}
