import type { EventObject } from 'xstate';
import { NotFoundError } from '../errors.js';
import type { WorkflowRow } from '../persistence/schema.js';
import type { KernelPort } from '../kernel/port.js';
import { parseId } from '../kernel/records.js';
import type { UnitOfWork } from '../kernel/unit-of-work.js';
import { HOLD_OFFSET, type WorkflowDriver } from './workflow-driver.js';
import { WorkflowError } from './workflow-errors.js';
import { accepts } from './workflow-events.js';
import type { CancelResult } from './workflow-types.js';

/** The event a machine handles to compensate a cancel. */
export const CANCEL_EVENT: EventObject = { type: 'promised.cancel' };
/** The timer that ends a compensation that did not reach a final state in time. */
export const COMPENSATION_DEADLINE = 'promised.cancel.deadline';

/**
 * Cancelling workflows. A workflow whose current state handles `promised.cancel` receives it
 * first and runs on (it may start compensation steps) until it reaches a final state, fails, or
 * its compensation deadline passes; any of these ends it `failed` with `CANCELLED`. Otherwise,
 * and on a second cancel, it ends at once: its unfinished steps cancelled (a running handler's
 * signal aborts; a late outcome is refused by the fencing token), the child workflows they run
 * cancelled by the same rule, its timers dropped and its kept events discarded.
 */
export class WorkflowControl {
  readonly #port: KernelPort;
  readonly #driver: WorkflowDriver;
  readonly #registered: (name: string) => boolean;

  constructor(port: KernelPort, driver: WorkflowDriver, registered: (name: string) => boolean) {
    this.#port = port;
    this.#driver = driver;
    this.#registered = registered;
  }

  async cancel(id: string): Promise<CancelResult> {
    const workflowId = parseId(id);
    if (workflowId === undefined) throw new NotFoundError(String(id), 'workflow');
    return this.#port.write(async (uow) => {
      const row = await uow.tx.getWorkflow(workflowId);
      if (!row) throw new NotFoundError(String(id), 'workflow');
      if (row.status !== 'running') throw new WorkflowError('WORKFLOW_FINISHED', `workflow ${id} is ${row.status}; there is nothing to cancel`);
      return this.cancelIn(uow, row);
    });
  }

  /** Cancels a running workflow inside a unit of work: compensating when its machine handles `promised.cancel` (the first time), else at once. */
  async cancelIn(uow: UnitOfWork, paused: WorkflowRow): Promise<CancelResult> {
    const definition = this.#driver.definitionOf(paused);
    const { tx, now } = uow;
    // A paused workflow would hold its compensation steps: a cancel resumes it first.
    const row = paused.paused_at === null ? paused : await this.#resumeIn(uow, paused);
    if (row.cancel_requested_at === null && accepts(definition, row, CANCEL_EVENT)) {
      await tx.markCancelRequested(row.id, now);
      await tx.discardKeptEvents(row.id, 'cancelled', now);
      const deadline = { type: COMPENSATION_DEADLINE };
      await tx.upsertWorkflowTimer({ workflowId: row.id, timerId: COMPENSATION_DEADLINE, event: JSON.stringify(deadline), fireAt: now + definition.compensationTimeout, now });
      await this.#driver.apply(uow, { ...row, cancel_requested_at: now }, CANCEL_EVENT, { refuseBadContext: true });
      const after = await tx.getWorkflow(row.id);
      return { outcome: after?.status === 'running' ? 'compensating' : 'cancelled' };
    }
    const message = row.cancel_requested_at === null ? `workflow ${row.id} was cancelled` : `workflow ${row.id} was cancelled again while compensating: its compensation was stopped`;
    await this.#endCancelled(uow, row, message);
    return { outcome: 'cancelled' };
  }

  /**
   * Pauses a running workflow: its pending steps and timers are held (nothing claims or fires
   * them) and those its transitions start meanwhile are held too; the steps it runs as child
   * workflows are paused with it. Events still reach its machine. False when already paused.
   */
  async pause(id: string): Promise<boolean> {
    return this.#port.write(async (uow) => {
      const row = await this.#running(uow, id, 'pause');
      if (row.paused_at !== null) return false;
      await this.#pauseIn(uow, row);
      return true;
    });
  }

  /** Resumes a paused workflow (and the child workflows paused with it); false when it was not paused. */
  async resume(id: string): Promise<boolean> {
    const resumed = await this.#port.write(async (uow) => {
      const row = await this.#running(uow, id, 'resume');
      if (row.paused_at === null) return false;
      await this.#resumeIn(uow, row);
      return true;
    });
    // Held steps became runnable without a transition of theirs: ask this process to claim.
    if (resumed) this.#port.wake();
    return resumed;
  }

  async #running(uow: UnitOfWork, id: string, what: string): Promise<WorkflowRow> {
    const workflowId = parseId(id);
    const row = workflowId === undefined ? undefined : await uow.tx.getWorkflow(workflowId);
    if (!row) throw new NotFoundError(String(id), 'workflow');
    if (row.status !== 'running') throw new WorkflowError('WORKFLOW_FINISHED', `workflow ${id} is ${row.status}; there is nothing to ${what}`);
    return row;
  }

  async #pauseIn(uow: UnitOfWork, row: WorkflowRow): Promise<void> {
    await uow.tx.setWorkflowPaused(row.id, uow.now, uow.now);
    await uow.tx.holdWorkflowWork(row.id, HOLD_OFFSET, uow.now);
    for (const child of await this.#childrenOf(uow, row.id)) if (child.paused_at === null) await this.#pauseIn(uow, child);
  }

  async #resumeIn(uow: UnitOfWork, row: WorkflowRow): Promise<WorkflowRow> {
    await uow.tx.setWorkflowPaused(row.id, null, uow.now);
    await uow.tx.releaseWorkflowWork(row.id, HOLD_OFFSET, uow.now);
    for (const child of await this.#childrenOf(uow, row.id)) if (child.paused_at !== null) await this.#resumeIn(uow, child);
    return { ...row, paused_at: null };
  }

  /** The running child workflows of a workflow's unfinished steps. */
  async #childrenOf(uow: UnitOfWork, workflowId: number): Promise<WorkflowRow[]> {
    const children: WorkflowRow[] = [];
    for (const step of await uow.tx.stepsOf(workflowId)) {
      if (step.status === 'completed' || step.status === 'failed') continue;
      const childId = await uow.tx.workflowOfParentStep(step.id);
      const child = childId === undefined ? undefined : await uow.tx.getWorkflow(childId);
      if (child?.status === 'running') children.push(child);
    }
    return children;
  }

  /** The compensation deadline of a cancelled workflow passed: it ends now, as a cancel without compensation would. */
  async compensationOverdue(uow: UnitOfWork, row: WorkflowRow): Promise<void> {
    const timeout = this.#driver.definitionOf(row).compensationTimeout;
    this.#port.log.warn({ workflowId: row.id, workflow: row.name, compensationTimeout: timeout }, 'a cancelled workflow did not finish its compensation in time; ending it');
    await this.#endCancelled(uow, row, `workflow ${row.id} was cancelled; its compensation did not reach a final state within ${timeout} ms and was stopped`);
  }

  /** A step promise was cancelled: the child workflow it runs, if still running, is cancelled too. */
  async cancelChildOf(uow: UnitOfWork, stepId: number): Promise<void> {
    const childId = await uow.tx.workflowOfParentStep(stepId);
    if (childId === undefined) return;
    const child = await uow.tx.getWorkflow(childId);
    if (!child || child.status !== 'running') return;
    if (!this.#registered(child.name)) return this.#endCancelled(uow, child, `workflow ${child.id} was cancelled with its parent step ${stepId}`);
    await this.cancelIn(uow, child);
  }

  async #endCancelled(uow: UnitOfWork, row: WorkflowRow, message: string): Promise<void> {
    await uow.tx.discardKeptEvents(row.id, 'cancelled', uow.now);
    await this.#driver.finish(uow, row, row.snapshot, { status: 'failed', error: { code: 'CANCELLED', message } }, CANCEL_EVENT.type, row);
  }
}
