import type { Store } from '../persistence/store.js';
import type { TaskRegistry } from '../kernel/task-registry.js';
import { latestDueAtOrBefore, nextDueAfter, parseCron } from './periodic-schedules.js';

/** A periodic schedule as {@link Engine.schedules} reports it. */
export interface ScheduleInfo {
  name: string;
  /** The task type of its runs: `periodic:<name>` (pause it to pause the schedule). */
  type: string;
  cron: string;
  timezone: string | null;
  /**
   * The last due time that passed: a run was created for it (or, with `catchUp: 'skip'` or while
   * paused, it was skipped); null before the first.
   */
  lastDueAt: Date | null;
  /** The next due time after now, or null when the expression has none. */
  nextRunAt: Date | null;
  /** Its type is paused: due times pass without runs until it is resumed. */
  paused: boolean;
}

/** A key of a per-key concurrency limit with work waiting or running ({@link Engine.limitedKeys}). */
export interface LimitedKey {
  type: string;
  key: string;
  running: number;
  pending: number;
  /** The type's per-key limit, when the type is registered in this process; null otherwise. */
  limit: number | null;
  /** At its limit with work pending: nothing more of this key starts until one finishes. */
  held: boolean;
}

const KEYS_SHOWN = 200;

/** Every schedule any process registered on this database, with its next due time. */
export async function readSchedules(store: Store, now: number): Promise<ScheduleInfo[]> {
  const [rows, paused] = await Promise.all([store.listSchedules(), store.pausedTypes()]);
  const pausedTypes = new Set(paused.map((row) => row.type));
  return rows.map((row) => {
    const type = `periodic:${row.name}`;
    let next: number | undefined;
    let lastDue: number | null = null;
    try {
      const cron = parseCron(row.name, row.cron, row.timezone ?? undefined);
      next = nextDueAfter(cron, now);
      // A new schedule's row holds the time it began, which is no due time of its own.
      if (row.last_due_at !== null && latestDueAtOrBefore(cron, row.last_due_at) === row.last_due_at) lastDue = row.last_due_at;
    } catch {
      // Written by a version that read the expression differently: shown without its times.
      next = undefined;
    }
    return { name: row.name, type, cron: row.cron, timezone: row.timezone, lastDueAt: lastDue === null ? null : new Date(lastDue), nextRunAt: next === undefined ? null : new Date(next), paused: pausedTypes.has(type) };
  });
}

/** Task types paused with `engine.pause(type)`, and since when. */
export async function readPausedTypes(store: Store): Promise<Array<{ type: string; pausedAt: Date }>> {
  return (await store.pausedTypes()).map((row) => ({ type: row.type, pausedAt: new Date(row.paused_at) }));
}

/** The keys of per-key concurrency limits with work, the most pending first; `held` when at the limit. */
export async function readLimitedKeys(store: Store, tasks: TaskRegistry): Promise<LimitedKey[]> {
  return (await store.keysWithWork(KEYS_SHOWN)).map((row) => {
    const limit = tasks.get(row.type)?.options.flow?.keyLimit ?? null;
    return { ...row, limit, held: limit !== null && row.pending > 0 && row.running >= limit };
  });
}
