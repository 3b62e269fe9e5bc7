import type { PromiseStatus } from '../machines/promise-machine.js';
import type { PromiseRow } from '../persistence/schema.js';
import { fromJsonText } from '../json.js';

/** A promise as the public API shows it. */
export interface PromiseRecord {
  /** Ids are strings (stable across SQLite and PostgreSQL). */
  id: string;
  type: string;
  status: PromiseStatus;
  /** Higher runs first. */
  priority: number;
  payload: unknown;
  /** The handler's JSON result, once `completed`. */
  result: unknown;
  /** Why it failed (or, while retrying, why the last attempt failed). */
  error: { code: string; message: string } | null;
  /** Attempts started so far. */
  attempts: number;
  maxAttempts: number;
  /** Ids of the promises this one waits for. */
  dependsOn: string[];
  progress: { current: number; total: number } | null;
  /** Earliest time it may run. */
  runAt: Date;
  createdAt: Date;
  /** When its first attempt started. */
  startedAt: Date | null;
  /** When it reached `completed` or `failed`. */
  completedAt: Date | null;
}

export function toRecord(row: PromiseRow, dependsOn: number[]): PromiseRecord {
  return {
    id: String(row.id),
    type: row.type,
    status: row.status as PromiseStatus,
    priority: row.priority,
    payload: fromJsonText(row.payload),
    result: fromJsonText(row.result),
    error: row.error_code === null ? null : { code: row.error_code, message: row.error_message ?? '' },
    attempts: row.attempts,
    maxAttempts: row.max_attempts,
    dependsOn: dependsOn.map(String),
    progress: row.progress_total === null ? null : { current: row.progress_current ?? 0, total: row.progress_total },
    runAt: new Date(row.run_at),
    createdAt: new Date(row.created_at),
    startedAt: row.started_at === null ? null : new Date(row.started_at),
    completedAt: row.completed_at === null ? null : new Date(row.completed_at),
  };
}

/** Parses a public id; `undefined` for anything that cannot name a row. */
export function parseId(id: unknown): number | undefined {
  if (typeof id === 'number' && Number.isSafeInteger(id) && id > 0) return id;
  if (typeof id !== 'string' || !/^[1-9]\d{0,15}$/.test(id)) return undefined;
  const value = Number(id);
  return Number.isSafeInteger(value) ? value : undefined;
}
