import { EventEmitter } from 'node:events';
import type { KernelEvents } from '../kernel/events.js';
import type { WorkflowChange } from '../workflows/workflow-types.js';
import type { StartSummary } from './public-types.js';

/** What {@link Engine.on} can listen to: the kernel's promise events, workflow moves and the engine's lifecycle. */
export interface EngineEvents extends KernelEvents {
  /** A workflow moved (after the commit): its new state value, status, and the event applied. */
  workflow: [change: WorkflowChange];
  /** `start()` resumed stored work (promises, inboxes, workflows, schedules) and now claims work. */
  started: [summary: StartSummary];
  /** `stop()` began: nothing more is claimed; the database is still open. */
  stopping: [];
}

/** The name of an event that `engine.on(name, listener)` accepts. */
export type EngineEventName = keyof EngineEvents;

/** Node's EventEmitter with the engine's event map. */
export class EngineEmitter extends EventEmitter<EngineEvents> {}
