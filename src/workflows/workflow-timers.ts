import type { EventObject } from 'xstate';
import type { KernelPort } from '../kernel/port.js';
import { timerDelay } from '../kernel/timers.js';
import type { UnitOfWork } from '../kernel/unit-of-work.js';
import type { WorkflowRow } from '../persistence/schema.js';

const TIMER_BATCH = 100;

/**
 * XState's `after` timers are not in a snapshot, so the runtime stores each as a row
 * `{ event, fireAt }` and this one timer waits for the earliest of them, in whichever process
 * is running; deleting the row is the claim, so of two processes only one applies the event.
 */
export class WorkflowTimers {
  readonly #port: KernelPort;
  /** Applies a due timer's event to its (running) workflow, inside the unit of work. */
  readonly #fire: (uow: UnitOfWork, row: WorkflowRow, event: EventObject) => Promise<void>;
  #timer: NodeJS.Timeout | undefined;

  constructor(port: KernelPort, fire: (uow: UnitOfWork, row: WorkflowRow, event: EventObject) => Promise<void>) {
    this.#port = port;
    this.#fire = fire;
  }

  /** After a commit that may have changed the stored timers: re-arm. */
  rearm(): void {
    if (this.#port.started) this.#port.background(() => this.#arm(), 'could not arm the workflow timer');
  }

  /** Fires every stored timer due by now (the clock moved forward), then re-arms. */
  fireDueNow(): Promise<void> {
    return this.#fireDue();
  }

  stop(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  async #arm(): Promise<void> {
    const at = await this.#port.store.nextWorkflowTimerAt();
    this.stop();
    if (at === null || !this.#port.started) return;
    this.#timer = setTimeout(() => this.#port.background(() => this.#fireDue(), 'could not fire workflow timers'), timerDelay(at - this.#port.clock.now()));
    this.#timer.unref();
  }

  async #fireDue(): Promise<void> {
    for (;;) {
      const fired = await this.#port.write(async (uow) => {
        const due = await uow.tx.dueWorkflowTimers(uow.now, TIMER_BATCH);
        for (const timer of due) {
          // Deleting first is the claim: of two processes, only one applies the event.
          if (!(await uow.tx.deleteWorkflowTimer(timer.workflow_id, timer.timer_id))) continue;
          const row = await uow.tx.getWorkflow(timer.workflow_id);
          if (row?.status === 'running') await this.#fire(uow, row, JSON.parse(timer.event) as EventObject);
        }
        return due.length;
      });
      if (fired < TIMER_BATCH) break;
    }
    this.rearm();
  }
}
