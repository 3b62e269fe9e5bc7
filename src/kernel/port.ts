import type { Logger } from 'pino';
import type { Store } from '../persistence/store.js';
import type { Clock, TaskOptions } from './options.js';
import type { TaskHandler } from './task-context.js';
import type { SettleHook } from './settle-hooks.js';
import type { NewPromiseSpec } from './transition-types.js';
import type { PromiseTransitions } from './transitions.js';
import type { Work } from './unit-of-work.js';

/** A layer's timers, as a moved clock sees them. */
export interface ClockHook {
  /** The earliest time one of them comes due, or null. */
  nextDueAt(): Promise<number | null> | number | null;
  /** Fires (writes) everything due by now, before returning. */
  fireDue(): Promise<void>;
}

/** A promise to create, as `enqueue` takes it (validated by {@link KernelPort.specOf}). */
export interface PromiseItem {
  type: string;
  payload?: unknown;
  priority?: number;
  delay?: number;
  dependsOn?: string[];
  key?: string;
  /** The key a per-key concurrency limit counts it under, instead of the task's key function. */
  concurrencyKey?: string;
}

/**
 * The one surface of the promise kernel that the layers built on it (workflows, the inbox,
 * periodic schedules) use. They write through units of work, react to settlements through
 * hooks that run inside the settling transaction, and hear of other processes' commits through
 * a subscription; the kernel knows none of them.
 */
export interface KernelPort {
  readonly clock: Clock;
  readonly log: Logger;
  /** True between `start()` and `stop()`. */
  readonly started: boolean;
  /** Reads. Every write goes through {@link KernelPort.write}. */
  readonly store: Store;
  /** The promise machine's transitions, applied inside a unit of work. */
  readonly promises: PromiseTransitions;
  /**
   * Runs `work` in one transaction: its recorded transitions are announced and its
   * `afterCommit` effects run once it commits, never when it rolls back.
   */
  write<T>(work: Work<T>): Promise<T>;
  /** Registers a promise type and its handler. */
  registerTask(type: string, handler: TaskHandler, options?: TaskOptions): void;
  /** Validates an item as `enqueue` would and returns what to insert. */
  specOf(item: PromiseItem, payloadPath: string): NewPromiseSpec;
  /** Runs `hook` inside every transaction that settles a promise (in registration order). */
  onSettled(hook: SettleHook): void;
  /** Calls `listener` when another process committed changes; returns the function that stops it. */
  onExternalChange(listener: () => void): () => void;
  /**
   * Aborts the handler of a claim running in this process (its signal aborts with `reason`) and
   * refuses its outcome. Call it after the commit that took the claim away (cancelled it): other
   * processes notice that commit themselves and abort their own handler.
   */
  abortRunning(id: number, reason: Error): void;
  /**
   * Registers timers kept by a layer (workflow `after` timers, cron runs) with the kernel, for a
   * clock that is moved forward (a test's virtual clock): the kernel asks when each comes due and
   * has it fire what came due.
   */
  onClockMoved(hook: ClockHook): void;
  /**
   * Asks for a claim pass: promises may have become runnable without a transition of theirs
   * (a paused workflow's held steps released). Other processes notice the commit themselves.
   */
  wake(): void;
  /** Runs background work, reporting its failure on the engine's `error` event. */
  background(work: () => Promise<unknown>, message: string): void;
}
