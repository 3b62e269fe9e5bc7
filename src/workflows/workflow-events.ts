import type { EventObject } from 'xstate';
import { InvalidOptionError, NotFoundError } from '../errors.js';
import { toJsonText } from '../json.js';
import { acceptsWorkflowEvent, type PersistedWorkflowSnapshot } from '../machines/workflow-machine.js';
import type { WorkflowRow } from '../persistence/schema.js';
import type { KernelPort } from '../kernel/port.js';
import { parseId } from '../kernel/records.js';
import type { UnitOfWork } from '../kernel/unit-of-work.js';
import type { Definition } from './workflow-definitions.js';
import type { WorkflowDriver } from './workflow-driver.js';
import { WorkflowError } from './workflow-errors.js';
import { storableKey } from './workflow-input.js';
import type { SendResult, WorkflowEvent } from './workflow-types.js';

/**
 * External events and the rule that decides their outcome. An event the current state accepts
 * is applied (`accepted`). One it does not accept is `kept` only while the workflow is moving on
 * its own towards a state that accepts it, and only if it is not a repeat; otherwise `dropped`:
 *
 * - moving on its own: a step of the workflow is running, or a timer of it is set, and from that
 *   step's completion (or that timer's firing) a state accepting an event of this type can be
 *   reached without another external event (read from the machine's config);
 * - a repeat: an event of the same type was applied since that step or timer began (the second
 *   click of a double click, sent while the first click's own step runs).
 *
 * A kept event lapses after its TTL. After every transition the kept events are offered, oldest
 * first: the first the new state accepts is applied; one for which the rule no longer holds is
 * discarded (`unreachable`).
 */
export class WorkflowEvents {
  readonly #port: KernelPort;
  readonly #driver: WorkflowDriver;

  constructor(port: KernelPort, driver: WorkflowDriver) {
    this.#port = port;
    this.#driver = driver;
  }

  /** Stores an event with its outcome and applies it when accepted, in one transaction. */
  async send(id: string, event: WorkflowEvent, key: string | undefined): Promise<SendResult> {
    const workflowId = parseId(id);
    if (workflowId === undefined) throw new NotFoundError(String(id), 'workflow');
    const type = eventTypeOf(event);
    const eventText = toJsonText(event, 'event');
    return this.#port.write(async (uow) => {
      const { tx, now } = uow;
      const row = await tx.getWorkflow(workflowId);
      if (!row) throw new NotFoundError(String(id), 'workflow');
      if (key !== undefined) {
        // A repeat of a keyed send is the same event: the first one's outcome, nothing written.
        const earlier = await tx.workflowEventByKey(workflowId, key);
        if (earlier) return resultOf(earlier.id, earlier.outcome as SendResult['outcome'], earlier.expires_at);
      }
      if (row.status !== 'running') throw new WorkflowError('WORKFLOW_FINISHED', `workflow ${id} is ${row.status}; it accepts no more events`);
      const definition = this.#driver.definitionOf(row);
      const parsed = JSON.parse(eventText) as EventObject;
      const stored = { workflowId, event: eventText, type, key: key ?? null, now };
      if (accepts(definition, row, parsed)) {
        const eventId = await tx.insertWorkflowEvent({ ...stored, outcome: 'accepted', appliedAt: now, expiresAt: null });
        await this.#driver.apply(uow, row, parsed, { refuseBadContext: true });
        return resultOf(eventId, 'accepted', null);
      }
      const ttl = ttlOf(definition, type);
      if (ttl > 0 && (await this.#keepable(uow, definition, row, type))) {
        const eventId = await tx.insertWorkflowEvent({ ...stored, outcome: 'kept', appliedAt: null, expiresAt: now + ttl });
        return resultOf(eventId, 'kept', now + ttl);
      }
      const eventId = await tx.insertWorkflowEvent({ ...stored, outcome: 'dropped', appliedAt: null, expiresAt: null });
      this.#port.log.info({ workflowId, workflow: row.name, event: type, value: (JSON.parse(row.snapshot) as PersistedWorkflowSnapshot).value }, 'event dropped: the workflow neither accepts it nor moves towards a state that does');
      return resultOf(eventId, 'dropped', null);
    });
  }

  /** After a transition: applies the first kept event the new state accepts; discards those the rule no longer keeps. */
  async offerKept(uow: UnitOfWork, workflowId: number): Promise<void> {
    const kept = await uow.tx.keptWorkflowEvents(workflowId, uow.now);
    if (kept.length === 0) return;
    const row = await uow.tx.getWorkflow(workflowId);
    if (!row || row.status !== 'running') return;
    const definition = this.#driver.definitionOf(row);
    for (const stored of kept) {
      const event = JSON.parse(stored.event) as EventObject;
      if (accepts(definition, row, event)) {
        await uow.tx.markWorkflowEventApplied(stored.id, uow.now);
        // That transition offers the rest again.
        return this.#driver.apply(uow, row, event, { refuseBadContext: false });
      }
      if (!(await this.#keepable(uow, definition, row, event.type))) await uow.tx.discardWorkflowEvent(workflowId, stored.id, 'unreachable', uow.now);
    }
  }

  /** Discards a kept event; false when it is not kept (applied, discarded, lapsed or never kept). */
  async discard(workflowId: string, eventId: string): Promise<boolean> {
    const workflow = parseId(workflowId);
    if (workflow === undefined) throw new NotFoundError(String(workflowId), 'workflow');
    const event = parseId(eventId);
    if (event === undefined) throw new NotFoundError(String(eventId), 'workflow event');
    return this.#port.write(async (uow) => {
      if (!(await uow.tx.getWorkflow(workflow))) throw new NotFoundError(String(workflowId), 'workflow');
      const kept = await uow.tx.keptWorkflowEvents(workflow, uow.now);
      if (!kept.some((row) => row.id === event)) return false;
      return uow.tx.discardWorkflowEvent(workflow, event, 'discarded', uow.now);
    });
  }

  /** Whether the rule keeps an event of `type` now (see the class comment). */
  async #keepable(uow: UnitOfWork, definition: Definition, row: WorkflowRow, type: string): Promise<boolean> {
    const { tx } = uow;
    const lastApplied = await tx.lastAppliedEventAt(row.id, type);
    const fresh = (since: number | null) => lastApplied === undefined || (since ?? 0) > lastApplied;
    const running = (JSON.parse(row.snapshot) as PersistedWorkflowSnapshot).children ?? {};
    for (const step of await tx.stepsOf(row.id)) {
      if (step.status === 'completed' || step.status === 'failed' || step.invoke_id === null || !running[step.invoke_id]) continue;
      const internal = [`xstate.done.actor.${step.invoke_id}`, `xstate.error.actor.${step.invoke_id}`];
      if (fresh(step.created_at) && definition.reachability.reaches(internal, type)) return true;
    }
    for (const timer of await tx.timersOf(row.id)) {
      const internal = [(JSON.parse(timer.event) as EventObject).type];
      if (fresh(timer.created_at) && definition.reachability.reaches(internal, type)) return true;
    }
    return false;
  }
}

/** The type of an external event; refused (before anything is written) unless a storable string of the caller's own. */
export function eventTypeOf(event: WorkflowEvent): string {
  if (!event || typeof event !== 'object' || typeof event.type !== 'string' || event.type.length === 0) {
    throw new InvalidOptionError('event', event, 'an object with a string type, for example { type: "APPROVE" }');
  }
  if (event.type.startsWith('xstate.') || event.type.startsWith('promised.')) {
    throw new InvalidOptionError('event.type', event.type, 'an event of your own (xstate.* and promised.* events are sent by the engine)');
  }
  return storableKey('event.type', event.type);
}

/** True when the stored state handles `event` (a snapshot that no longer fits counts as handling: applying it fails the workflow). */
export function accepts(definition: Definition, row: WorkflowRow, event: EventObject): boolean {
  try {
    return acceptsWorkflowEvent(definition.machine, JSON.parse(row.snapshot) as PersistedWorkflowSnapshot, event);
  } catch {
    return true;
  }
}

function ttlOf(definition: Definition, type: string): number {
  return definition.keptEvents.byType[type] ?? definition.keptEvents.ttl;
}

function resultOf(eventId: number, outcome: SendResult['outcome'], expiresAt: number | null): SendResult {
  return { outcome, eventId: String(eventId), expiresAt: expiresAt === null ? null : new Date(expiresAt) };
}
