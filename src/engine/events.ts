import { EventEmitter } from 'node:events';
import type { PromiseStatus, PromiseEventType } from '../machines/promise-machine.js';
import type { PromiseRecord } from './records.js';
import type { WorkflowChange } from '../workflows/workflow-runtime.js';

/** A state change of one promise, as applied to its machine. */
export interface TransitionEvent {
  id: string;
  type: string;
  event: PromiseEventType;
  from: PromiseStatus;
  to: PromiseStatus;
  attempt: number;
  at: Date;
}

/** What {@link Engine.on} can listen to. */
export interface EngineEvents {
  /** A promise completed; the record includes its result. */
  completed: [record: PromiseRecord];
  /** A promise failed for good (attempts exhausted, cancelled, or a dependency failed). */
  failed: [record: PromiseRecord];
  /** An attempt failed and another is scheduled. */
  retrying: [record: PromiseRecord];
  /** A handler reported progress. */
  progress: [progress: { id: string; type: string; current: number; total: number }];
  /** Any state change. */
  transition: [transition: TransitionEvent];
  /** A workflow moved (after the commit): its new state value, status, and the event applied. */
  workflow: [change: WorkflowChange];
  /** A background loop hit an error it could not hand to a caller. */
  error: [error: Error];
}

/** The name of an event that `engine.on(name, listener)` accepts. */
export type EngineEventName = keyof EngineEvents;

/** Node's EventEmitter with the engine's event map. */
export class EngineEmitter extends EventEmitter<EngineEvents> {}
