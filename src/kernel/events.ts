import type { PromiseStatus, PromiseEventType } from '../machines/promise-machine.js';
import type { PromiseRecord } from './records.js';

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

/** One attempt of a handler, as it ended. */
export interface AttemptEvent {
  id: string;
  type: string;
  attempt: number;
  outcome: 'succeeded' | 'failed';
  /** From the handler's call to its return or throw (or its signal's abort). */
  durationMs: number;
}

/** What a kernel's `resume()` found and did. */
export interface ResumeSummary {
  /** Unfinished promises found in the database, by status. */
  resumed: { waiting: number; pending: number; in_progress: number; total: number };
  /** Claims of dead processes (or expired leases) taken back and rescheduled or failed. */
  recovered: number;
  /** Snapshots that did not match their row's status and were rewritten from it. */
  repairedSnapshots: number;
}

/** The events of the promise kernel: what happens to promises, and the engine's lifecycle. */
export interface KernelEvents {
  /** A promise completed; the record includes its result. */
  completed: [record: PromiseRecord];
  /** A promise failed for good (attempts exhausted, cancelled, or a dependency failed). */
  failed: [record: PromiseRecord];
  /** An attempt failed and another is scheduled. */
  retrying: [record: PromiseRecord];
  /** An attempt's handler returned or threw (emitted before its outcome commits): for metrics. */
  attempt: [attempt: AttemptEvent];
  /** A handler reported progress. */
  progress: [progress: { id: string; type: string; current: number; total: number }];
  /** Any state change, after its commit. */
  transition: [transition: TransitionEvent];
  /** A background loop hit an error it could not hand to a caller. */
  error: [error: Error];
}

/**
 * What the kernel needs of the engine's event emitter: to emit its own events, and to know
 * whether anyone listens (building some events costs a read).
 */
export interface KernelEmitter {
  emit<E extends keyof KernelEvents>(event: E, ...args: KernelEvents[E]): boolean;
  listenerCount(event: keyof KernelEvents): number;
}
