import { errorRecordOf, NonRetryableError, PromisedError, RetryAfterError } from '../errors.js';
import { toJsonText } from '../json.js';
import { MAX_DELAY_MS } from './options.js';
import type { Outcome } from './outcome-batch.js';
import { storableError } from './storable-text.js';
import type { TaskDefinition } from './task-context.js';
import type { ClaimRef } from './transition-types.js';

/** How an attempt's handler call ended: its return value, or what it threw (an abort too). */
export type Settled = { ok: true; value: unknown } | { ok: false; thrown: unknown };

/** The outcome of one promise whose attempt returned `value`: its result stored as JSON (a value JSON cannot hold fails the attempt). */
export function succeededOutcome(claim: ClaimRef, task: TaskDefinition, value: unknown): Outcome {
  try {
    const stored = value === undefined || !task.options.storeResult ? null : toJsonText(value, 'result');
    return { claim, task, kind: 'succeed', result: stored };
  } catch (thrown) {
    return failedOutcome(claim, task, thrown);
  }
}

/** The outcome of one promise whose attempt threw `thrown`, with what the error asks of the next attempt. */
export function failedOutcome(claim: ClaimRef, task: TaskDefinition, thrown: unknown): Outcome {
  return { claim, task, kind: 'fail', error: storableError(errorRecordOf(thrown)), ...failurePolicyOf(thrown) };
}

/**
 * The outcome of each member of a batch, in payload order. A throw (or an abort: timeout, stop)
 * fails every member's attempt alike; each then retries or fails on its own. Returning nothing
 * completes every member without a result; an array of one entry per payload gives each member
 * its entry, and an entry that is an `Error` fails that member's attempt alone (a
 * `NonRetryableError` for good, a `RetryAfterError` not before its time). Anything else is a
 * broken contract: every member's attempt fails with `BATCH_RESULT_MISMATCH`.
 */
export function batchOutcomes(members: ReadonlyArray<{ claim: ClaimRef; task: TaskDefinition }>, settled: Settled): Outcome[] {
  if (!settled.ok) return members.map(({ claim, task }) => failedOutcome(claim, task, settled.thrown));
  const { value } = settled;
  if (value === undefined) return members.map(({ claim, task }) => succeededOutcome(claim, task, undefined));
  if (!Array.isArray(value) || value.length !== members.length) {
    const seen = Array.isArray(value) ? `an array of ${value.length}` : typeof value;
    const mismatch = new PromisedError('BATCH_RESULT_MISMATCH', `the batch handler returned ${seen} for ${members.length} payloads; return an array with one result per payload, in their order (or nothing)`);
    return members.map(({ claim, task }) => failedOutcome(claim, task, mismatch));
  }
  return members.map(({ claim, task }, index) => {
    const entry: unknown = value[index];
    return entry instanceof Error ? failedOutcome(claim, task, entry) : succeededOutcome(claim, task, entry);
  });
}

/** What a handler's error asks of the next attempt: none (`NonRetryableError`), or not before a time (`RetryAfterError`). */
function failurePolicyOf(thrown: unknown): { final?: boolean; retryAfterMs?: number } {
  if (thrown instanceof NonRetryableError) return { final: true };
  if (thrown instanceof RetryAfterError && Number.isFinite(thrown.retryAfterMs)) return { retryAfterMs: Math.min(Math.max(0, thrown.retryAfterMs), MAX_DELAY_MS) };
  return {};
}
