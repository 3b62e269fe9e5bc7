import type { PromiseStatus } from '../machines/promise-machine.js';
import type { ResumeSummary } from '../kernel/events.js';
import type { TaskOptions } from '../kernel/options.js';
import type { TaskContext } from '../kernel/task-context.js';
import type { PromiseRecord } from '../kernel/records.js';

/** What to do with runs that fell due while no engine was running. */
export type CatchUp = 'once' | 'skip';

/** Options for one {@link Engine.enqueue}. */
export interface EnqueueOptions {
  /** Higher runs first, -1000…1000; defaults to the task's `priority`. */
  priority?: number;
  /** Milliseconds to wait before the first attempt (0 … one year). */
  delay?: number;
  /** Ids of promises that must complete first; if one fails for good, this one fails with `DEPENDENCY_FAILED`. */
  dependsOn?: string[];
  /** Idempotency key: enqueueing the same key again returns the first promise's id. */
  key?: string;
  /** The key the task's per-key `concurrency` limit counts this promise under (instead of its `key` function). */
  concurrencyKey?: string;
}

/** One item of {@link Engine.enqueueMany}. */
export interface EnqueueItem<P = unknown> extends EnqueueOptions {
  type: string;
  payload?: P;
}

/** Filter for {@link Engine.list}. */
export interface ListFilter {
  status?: PromiseStatus;
  type?: string;
  /** @defaultValue 100 */
  limit?: number;
}

/** Options of {@link Engine.retry}. */
export interface RetryOptions {
  /** A payload to run with instead of the stored one (an edited copy, say). */
  payload?: unknown;
}

/** What {@link EngineReads.deadLetters}.retryAll did. */
export interface RetriedDeadLetters {
  retried: string[];
  /** Those refused, with the engine's code (already retried elsewhere, or a parent still failed). */
  skipped: Array<{ id: string; code: string }>;
}

/** Filter and cursor for {@link Engine.listPage}. */
export interface PageFilter {
  status?: PromiseStatus;
  type?: string;
  /** Only promises whose error has this code (failed ones, and those retrying after a failed attempt). */
  errorCode?: string;
  /** A substring (any case) of the payload's JSON or the error message. */
  search?: string;
  /** The `next` of the previous page: only promises older than it. */
  before?: string;
  /** @defaultValue 50 (at most 1,000) */
  limit?: number;
}

/** One page of {@link Engine.listPage}. */
export interface PromisePage {
  /** Newest first. */
  promises: PromiseRecord[];
  /**
   * The cursor of the next (older) page, or null at the end. A filtered page reads a bounded
   * range of ids: it may hold fewer than `limit` promises and still have a `next`.
   */
  next: string | null;
}

/** Counts by status, and more. */
export interface EngineStats {
  waiting: number;
  pending: number;
  in_progress: number;
  completed: number;
  failed: number;
  /** Dead-letter records (promises that failed for good and were not retried or cleared). */
  deadLetters: number;
  /** Task types paused with `engine.pause(type)`: no process claims them. */
  paused: string[];
  /** Counts by type, then status. */
  byType: Record<string, Partial<Record<PromiseStatus, number>>>;
  /** How long the longest-waiting runnable promise has been due, ms (0 when none). */
  oldestPendingAgeMs: number;
  /** Promises finished in the last minute. */
  recent: { completedLastMinute: number; failedLastMinute: number; perSecond: number };
}

/** A promise that failed for good, as recorded when it failed. */
export interface DeadLetter {
  promiseId: string;
  type: string;
  payload: unknown;
  error: { code: string; message: string };
  attempts: number;
  createdAt: Date;
  failedAt: Date;
}

/** One line of a promise's history. */
export interface HistoryLine {
  event: string;
  from: PromiseStatus | null;
  to: PromiseStatus;
  attempt: number;
  error: { code: string; message: string } | null;
  at: Date;
}

/** Options for {@link Engine.periodic}: a task's options plus the schedule's. */
export interface PeriodicOptions extends TaskOptions {
  /** IANA time zone the cron expression is read in. @defaultValue the process's */
  timezone?: string;
  /**
   * A run that fell due while no engine was running: `'once'` runs the latest missed one once on
   * start; `'skip'` skips missed runs.
   * @defaultValue 'once'
   */
  catchUp?: CatchUp;
}

/** A periodic handler's context: the task context plus the due time of this run. */
export type PeriodicContext = TaskContext & { scheduledAt: Date };

/** Options for {@link Engine.inbox}. */
export interface InboxOptions extends TaskOptions {
  /** Messages older than this (ms) when first considered are recorded as `SKIPPED`, not run. */
  catchUpWindow: number;
}

/** What {@link Engine.start} found and resumed. */
export interface StartSummary extends ResumeSummary {
  /** Inbox messages stored while the engine was down and now older than their window: recorded as `SKIPPED`. */
  skippedMessages: number;
  /** Workflows resumed, and those whose stored snapshot no longer fits their machine (failed with `WORKFLOW_VERSION_MISMATCH`). */
  workflows: { running: number; versionMismatches: number };
}
