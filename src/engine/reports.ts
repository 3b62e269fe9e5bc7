import type { PromiseStatus } from '../machines/promise-machine.js';
import type { DeadLetterRow, Store } from '../persistence/store.js';
import type { DeadLetter, EngineStats, HistoryLine } from './public-types.js';

/** Counts by status and type, dead letters, the oldest due promise's wait, and recent throughput. */
export async function readStats(store: Store, now: number): Promise<EngineStats> {
  const [rows, deadLetters, oldestDue, recent, paused] = await Promise.all([
    store.countByStatusAndType(),
    store.countDeadLetters(),
    store.oldestDueRunAt(now),
    store.countFinishedSince(now - 60_000),
    store.pausedTypes(),
  ]);
  const totals: Record<string, number> = {};
  const byType: EngineStats['byType'] = {};
  for (const { status, type, count } of rows) {
    totals[status] = (totals[status] ?? 0) + count;
    (byType[type] ??= {})[status as PromiseStatus] = count;
  }
  const at = (status: string) => totals[status] ?? 0;
  const completedLastMinute = recent.completed ?? 0;
  const failedLastMinute = recent.failed ?? 0;
  return {
    waiting: at('waiting'),
    pending: at('pending'),
    in_progress: at('in_progress'),
    completed: at('completed'),
    failed: at('failed'),
    deadLetters,
    paused: paused.map((row) => row.type),
    byType,
    oldestPendingAgeMs: oldestDue === null ? 0 : Math.max(0, now - oldestDue),
    recent: { completedLastMinute, failedLastMinute, perSecond: (completedLastMinute + failedLastMinute) / 60 },
  };
}

/**
 * A promise's history, or `undefined` when it does not exist: `ENQUEUED`, first `CLAIM` and
 * `SUCCEED` come from the row's timestamps (the happy path writes no history rows); every
 * exceptional transition comes from `promise_history`, in the order it was written.
 *
 * The lines are put in causal order, not sorted by time: a revived dependent can be retried and
 * claimed within one millisecond, so timestamps alone cannot tell which came first. Every
 * transition after the first claim leaves `in_progress` first (or is the final `SUCCEED`), so
 * the first claim goes just before the first history line that leaves `in_progress`.
 */
export async function readHistory(store: Store, id: number): Promise<HistoryLine[] | undefined> {
  const row = await store.getPromise(id);
  if (!row) return undefined;
  const lines: HistoryLine[] = [{ event: 'ENQUEUED', from: null, to: 'waiting', attempt: 0, error: null, at: new Date(row.created_at) }];
  const firstClaim: HistoryLine | null =
    row.started_at === null ? null : { event: 'CLAIM', from: 'pending', to: 'in_progress', attempt: 1, error: null, at: new Date(row.started_at) };
  for (const entry of await store.historyOf(id)) {
    if (firstClaim && entry.from_status === 'in_progress' && !lines.includes(firstClaim)) lines.push(firstClaim);
    lines.push({
      event: entry.event,
      from: entry.from_status as PromiseStatus,
      to: entry.to_status as PromiseStatus,
      attempt: entry.attempt,
      error: entry.error_code === null ? null : { code: entry.error_code, message: entry.error_message ?? '' },
      at: new Date(entry.at),
    });
  }
  if (firstClaim && !lines.includes(firstClaim)) lines.push(firstClaim);
  if (row.status === 'completed' && row.completed_at !== null) {
    lines.push({ event: 'SUCCEED', from: 'in_progress', to: 'completed', attempt: row.attempts, error: null, at: new Date(row.completed_at) });
  }
  return lines;
}

export function toDeadLetter(row: DeadLetterRow): DeadLetter {
  return {
    promiseId: String(row.promise_id),
    type: row.type,
    payload: JSON.parse(row.payload),
    error: { code: row.error_code, message: row.error_message },
    attempts: row.attempts,
    createdAt: new Date(row.created_at),
    failedAt: new Date(row.failed_at),
  };
}
