import type { EventObject } from 'xstate';
import { InvalidOptionError, NotFoundError } from '../errors.js';
import { snapshotMismatch, type PersistedWorkflowSnapshot } from '../machines/workflow-machine.js';
import type { KernelPort } from '../kernel/port.js';
import { parseId } from '../kernel/records.js';
import { integerIn } from '../kernel/options.js';
import type { UnitOfWork } from '../kernel/unit-of-work.js';
import type { WorkflowHistoryRow } from '../persistence/schema.js';
import { stepType } from './step-types.js';
import type { Definition } from './workflow-definitions.js';
import type { TimerLeft, WorkflowDriver } from './workflow-driver.js';
import { WorkflowError } from './workflow-errors.js';
import { optionalKey } from './workflow-input.js';
import type { RestartOptions, WorkflowTransition } from './workflow-types.js';
import { traceTransition } from './workflow-tracing.js';

/** The event type of the first line of a workflow started from another's history. */
export const RESTART_EVENT = 'promised.restart';

/** Every transition of a workflow, oldest first (`NOT_FOUND` for an unknown id). */
export async function readHistory(port: KernelPort, id: string): Promise<WorkflowTransition[]> {
  const workflowId = parseId(id);
  if (workflowId === undefined || !(await port.store.getWorkflow(workflowId))) throw new NotFoundError(String(id), 'workflow');
  const rows = await port.store.workflowTransitions(workflowId);
  return rows.map(toTransition);
}

/** A stored history line as the API shows it. */
export function toTransition(row: Pick<WorkflowHistoryRow, 'seq' | 'event' | 'from_value' | 'to_value' | 'status' | 'at'>): WorkflowTransition {
  return {
    seq: row.seq,
    event: row.event,
    from: row.from_value === null ? null : JSON.parse(row.from_value),
    to: JSON.parse(row.to_value),
    status: row.status as WorkflowTransition['status'],
    at: new Date(row.at),
  };
}

/**
 * Starts a new workflow from the snapshot stored after one transition of another (the original
 * is left as it is): the same name and input, that snapshot, the steps that were running then
 * started again (with the input they had), and the timers that were set then, with the delays
 * they had left. Kept events are not carried over.
 */
export async function restartWorkflow(port: KernelPort, driver: WorkflowDriver, id: string, options: RestartOptions): Promise<string> {
  const sourceId = parseId(id);
  if (options === null || typeof options !== 'object') throw new InvalidOptionError('options', options, 'an object { fromSeq }');
  const fromSeq = integerIn('fromSeq', options.fromSeq, 1, Number.MAX_SAFE_INTEGER);
  const key = optionalKey(options) ?? null;
  if (sourceId === undefined) throw new NotFoundError(String(id), 'workflow');
  return port.write(async (uow) => {
    const source = await uow.tx.getWorkflow(sourceId);
    if (!source) throw new NotFoundError(String(id), 'workflow');
    const definition = driver.definitionOf(source);
    const existing = key === null ? undefined : await uow.tx.workflowByKey(key);
    if (existing) return String(existing.id);
    const entry = await uow.tx.workflowTransition(sourceId, fromSeq);
    if (!entry) throw new InvalidOptionError('fromSeq', fromSeq, `the seq of a transition of workflow ${id} (1…${source.seq})`);
    if (entry.status !== 'running') throw new InvalidOptionError('fromSeq', fromSeq, `a transition after which workflow ${id} still ran (transition ${fromSeq} ended it ${entry.status})`);
    const persisted = fittingSnapshot(definition, entry);
    return traceTransition({ id: null, name: source.name, trace_context: null }, 'xstate.init', async (span) => {
      const workflowId = await uow.tx.insertWorkflow({
        name: source.name,
        input: source.input,
        snapshot: entry.snapshot,
        version: definition.version,
        parentStepId: null,
        key,
        restartedFrom: sourceId,
        restartedFromSeq: fromSeq,
        traceContext: span.traceContext,
        now: uow.now,
      });
      if (workflowId === undefined) return String((await uow.tx.workflowByKey(key!))!.id);
      span.started(workflowId);
      await startFrom(uow, port, driver, definition, { id: workflowId, name: source.name, version: definition.version }, persisted, entry);
      return String(workflowId);
    });
  });
}

/** The stored snapshot, if the registered machine can resume it. */
function fittingSnapshot(definition: Definition, entry: WorkflowHistoryRow): PersistedWorkflowSnapshot {
  const persisted = JSON.parse(entry.snapshot) as PersistedWorkflowSnapshot;
  const mismatch = entry.version === definition.version ? null : snapshotMismatch(definition.machine, persisted);
  if (mismatch) throw new WorkflowError('WORKFLOW_VERSION_MISMATCH', `transition ${entry.seq} of workflow ${entry.workflow_id} was written by another version of "${definition.name}" that this one cannot resume: ${mismatch}`);
  for (const [invokeId, child] of Object.entries(persisted.children ?? {})) {
    if (typeof child.src !== 'string' || !definition.steps.has(child.src)) {
      throw new WorkflowError('WORKFLOW_STEP_MISMATCH', `transition ${entry.seq} ran ${JSON.stringify(child.src)} as "${invokeId}", which workflow "${definition.name}" has no step for`);
    }
  }
  return persisted;
}

/** Writes what the new workflow's first state runs: its steps again, its timers, the first line of its history. */
async function startFrom(
  uow: UnitOfWork,
  port: KernelPort,
  driver: WorkflowDriver,
  definition: Definition,
  workflow: { id: number; name: string; version: string },
  persisted: PersistedWorkflowSnapshot,
  entry: WorkflowHistoryRow,
): Promise<void> {
  const { tx, now } = uow;
  await tx.saveWorkflow({ id: workflow.id, status: 'running', snapshot: entry.snapshot, output: null, errorCode: null, errorMessage: null, completedAt: null, seq: 1, now });
  for (const [invokeId, child] of Object.entries(persisted.children ?? {})) {
    const input = (child.snapshot as { input?: unknown } | undefined)?.input ?? null;
    const spec = port.specOf({ type: stepType(definition.name, child.src as string), payload: { input } }, `steps.${String(child.src)}.input`);
    await port.promises.create(uow, { ...spec, runAt: now, workflowId: workflow.id, invokeId });
  }
  const timers = JSON.parse(entry.timers) as TimerLeft[];
  for (const timer of timers) await tx.upsertWorkflowTimer({ workflowId: workflow.id, timerId: timer.timerId, event: JSON.stringify(timer.event as EventObject), fireAt: now + timer.delay, now });
  await driver.recordTransition(uow, workflow, 1, RESTART_EVENT, null, 'running', entry.snapshot, timers);
  driver.answerAfterCommit(uow, workflow, 'running', entry.snapshot, null, null, RESTART_EVENT);
  await driver.moved(uow, workflow.id);
}

