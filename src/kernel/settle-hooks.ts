import type { ErrorRecord, StepRef } from './transition-types.js';
import type { UnitOfWork } from './unit-of-work.js';

/**
 * A promise that reached `completed` or `failed` by its own transition (not a cascade from a
 * parent), as the settle hooks see it inside the transaction that settles it.
 */
export interface SettledPromise {
  id: number;
  type: string;
  /** Set when the promise runs one invocation of a workflow. */
  step: StepRef | undefined;
  status: 'completed' | 'failed';
  /** The stored result's JSON text, when completed. */
  result: string | null;
  error: ErrorRecord | null;
}

/**
 * Runs inside the transaction that settles a promise, so what it writes commits or rolls back
 * with the settlement (a workflow hears of its step this way).
 */
export type SettleHook = (uow: UnitOfWork, settled: SettledPromise) => Promise<void>;
