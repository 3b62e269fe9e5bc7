import type { PromiseEventType, PromiseStatus } from '../machines/promise-machine.js';

/** One state change that a transaction committed; the kernel announces it after the commit. */
export interface AppliedTransition {
  id: number;
  type: string;
  event: PromiseEventType;
  from: PromiseStatus;
  to: PromiseStatus;
}

/** A claim as the engine holds it while its handler runs. */
export interface ClaimRef {
  id: number;
  type: string;
  leaseToken: number;
  attempts: number;
  maxAttempts: number;
  /** Attempts of it that lost their lease: they count in `attempts` but do not spend retries. */
  leaseLosses: number;
  /** Set when the promise is a workflow step. */
  step?: StepRef | undefined;
}

/** A promise that runs one invocation of a workflow. */
export interface StepRef {
  promiseId: number;
  workflowId: number;
  invokeId: string;
}


/** The step of a row, if the row is one. */
export function stepOf(row: { id: number; workflow_id: number | null; invoke_id: string | null }): StepRef | undefined {
  return row.workflow_id === null || row.invoke_id === null ? undefined : { promiseId: row.id, workflowId: row.workflow_id, invokeId: row.invoke_id };
}

export interface NewPromiseSpec {
  type: string;
  payload: string;
  priority: number;
  maxAttempts: number;
  runAt: number;
  key: string | null;
  parents: number[];
  /** Set for a workflow step. */
  workflowId?: number;
  invokeId?: string;
  /** The keys its task's concurrency and rate limits count it under (a batched task's: its batch key). */
  flowKey: string | null;
  rateKey: string | null;
  /** Set for a debounced task: the key enqueues collapse under, and the task's bounds. */
  debounce?: { key: string; periodMs: number; maxDelayMs: number | null } | null;
  /** Its task's schedule-to-start allowance, ms. */
  expireIn?: number | null;
  /** How long its idempotency key is remembered after it settles, ms; null: while the row lives. */
  keyTtl?: number | null;
}

export interface ErrorRecord {
  code: string;
  message: string;
}

/** What the engine's task registry says about a type, as far as transitions care. */
export interface TypePolicy {
  /** How long a finished promise is kept; `null`: forever. */
  resultTtl: number | null;
  /** Task type enqueued, in the same transaction, when a promise of this type completes. */
  onComplete: string | null;
  /** Task type enqueued, in the same transaction, when a promise of this type fails for good. */
  onFail: string | null;
}
