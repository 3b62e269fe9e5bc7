import { PromisedError } from '../errors.js';
import { retryDelayMs } from './backoff.js';
import type { KernelContext } from './context.js';
import { storableError } from './storable-text.js';
import type { TaskDefinition } from './task-context.js';
import { withTraceScope, type AttemptTrace } from './tracing.js';
import type { ClaimRef, ErrorRecord } from './transition-types.js';
import type { UnitOfWork } from './unit-of-work.js';

/** How an attempt ended, waiting to be committed with its claim's fencing token. */
export type Outcome = {
  claim: ClaimRef;
  task: TaskDefinition;
  /** The last progress report not written yet: written with the outcome. */
  progress?: { current: number; total: number } | undefined;
  /** The attempt's span: its outcome commits in its context (follow-ups, workflow moves are its children). */
  attempt?: AttemptTrace | undefined;
} & (
  | { kind: 'succeed'; result: string | null }
  | {
      kind: 'fail';
      error: ErrorRecord;
      /** No further attempt, whatever are left (`NonRetryableError`, an outcome not storable). */
      final?: boolean;
      /** The next attempt no sooner than this (`RetryAfterError`). */
      retryAfterMs?: number;
    }
);

const COMMIT_RETRY_MS = 1_000;
const UNSTORABLE = 'OUTCOME_NOT_STORABLE';

/**
 * Commits outcomes: those of handlers that finish in the same event-loop turn in one
 * transaction. An outcome the database refuses must not take its batch down with it: the batch
 * is retried one outcome at a time, and an outcome refused alone fails its promise with
 * `OUTCOME_NOT_STORABLE` (a storable message saying why). Only when even that cannot be written
 * (the database is unreachable) are the outcomes kept and tried again.
 */
export class OutcomeBatch {
  readonly #ctx: KernelContext;
  /** An outcome was committed (or refused for a claim no longer ours): its claim is done. */
  readonly #onCommitted: (outcome: Outcome) => void;
  #pending: Outcome[] = [];
  #flush: Promise<void> | undefined;

  constructor(ctx: KernelContext, onCommitted: (outcome: Outcome) => void) {
    this.#ctx = ctx;
    this.#onCommitted = onCommitted;
  }

  /** Adds an outcome to the next commit. */
  push(outcome: Outcome): void {
    this.#pending.push(outcome);
    this.#scheduleFlush();
  }

  #scheduleFlush(): void {
    // setImmediate: every handler that finished in this turn commits in the same transaction.
    this.#flush ??= new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.#flushPending());
  }

  /** Commits `outcomes` now (immediate mode); true when nothing is left to retry. */
  async commitNow(outcomes: Outcome[]): Promise<boolean> {
    const left = await this.#commit(outcomes);
    for (const outcome of outcomes) if (!left.includes(outcome)) this.#onCommitted(outcome);
    return left.length === 0;
  }

  /** Commits everything pending, trying until `deadline` (a database that stays unreachable is given up on: the leases expire and the claims are recovered). */
  async drain(deadline: number): Promise<void> {
    while ((this.#flush || this.#pending.length > 0) && Date.now() < deadline) await (this.#flush ?? this.#flushPending());
    if (this.#pending.length > 0) {
      this.#ctx.options.logger.error({ outcomes: this.#pending.length }, 'stopping with outcomes the database did not take; their leases will expire and the promises run again');
    }
  }

  async #flushPending(): Promise<void> {
    const batch = this.#pending;
    this.#pending = [];
    try {
      const left = await this.#commit(batch);
      for (const outcome of batch) if (!left.includes(outcome)) this.#onCommitted(outcome);
      if (left.length > 0) {
        // Nothing of these was committed; the claims are still ours (heartbeats keep the leases).
        this.#pending.unshift(...left);
        await new Promise((resolve) => setTimeout(resolve, COMMIT_RETRY_MS));
      }
    } finally {
      this.#flush = undefined;
      if (this.#pending.length > 0) this.#scheduleFlush();
    }
  }

  /** Commits the batch; returns the outcomes that could not be committed at all. */
  async #commit(batch: Outcome[]): Promise<Outcome[]> {
    if (batch.length === 0) return [];
    try {
      await this.#write(batch);
      return [];
    } catch (error) {
      if (batch.length > 1) this.#ctx.options.logger.warn({ err: error, outcomes: batch.length }, 'an outcome batch was refused; committing its outcomes one by one');
      const left: Outcome[] = [];
      for (const outcome of batch) {
        try {
          if (batch.length > 1) await this.#write([outcome]);
          else throw error;
        } catch (refused) {
          if (!(await this.#failUnstorable(outcome, refused))) left.push(outcome);
        }
      }
      if (left.length > 0) this.#ctx.reportError(error, 'could not commit outcomes; retrying');
      return left;
    }
  }

  /** The database refused this outcome alone: its promise fails, for good, with why. True when that was committed. */
  async #failUnstorable(outcome: Outcome, refused: unknown): Promise<boolean> {
    // Only a refusal of this outcome's own values is its own: a constraint, text or a value the
    // database rejects. Anything else (disk full, busy, unreachable, a pool that timed out, the
    // engine stopping) is the database's state: kept and tried again.
    if ((outcome.kind === 'fail' && outcome.error.code === UNSTORABLE) || !refusesTheValues(refused)) return false;
    const reason = refused instanceof Error ? refused.message : String(refused);
    const error = storableError({ code: UNSTORABLE, message: `the database refused this attempt's outcome (${reason}); the promise fails instead of retrying for ever` });
    try {
      await this.#write([{ claim: outcome.claim, task: outcome.task, attempt: outcome.attempt, kind: 'fail', error, final: true }]);
    } catch {
      return false;
    }
    this.#ctx.options.logger.error({ promiseId: outcome.claim.id, type: outcome.claim.type, err: refused }, 'outcome not storable; the promise failed with OUTCOME_NOT_STORABLE');
    return true;
  }

  #write(batch: Outcome[]): Promise<void> {
    // Settled in id order, the order the heartbeat's renewal locks this process's claims in (on
    // PostgreSQL): two transactions that lock the same rows in one order cannot deadlock.
    const inIdOrder = batch.length > 1 ? [...batch].sort((a, b) => a.claim.id - b.claim.id) : batch;
    return this.#ctx.write(async (uow) => {
      for (const outcome of inIdOrder) {
        if (await withTraceScope(outcome.attempt?.scope, () => this.#apply(uow, outcome))) continue;
        outcome.attempt?.abandoned();
        const { id, type, attempts } = outcome.claim;
        this.#ctx.options.logger.warn({ promiseId: id, type, attempt: attempts }, 'outcome refused: the claim was taken over or cancelled');
      }
    });
  }

  async #apply(uow: UnitOfWork, outcome: Outcome): Promise<boolean> {
    const { transitions } = this.#ctx;
    const { claim, progress } = outcome;
    if (progress) await uow.tx.saveProgress(claim.id, claim.leaseToken, progress.current, progress.total, uow.now);
    if (outcome.kind === 'succeed') return transitions.succeed(uow, claim, outcome.result);
    const retryAt = uow.now + Math.max(retryDelayMs(outcome.task.options, claim.attempts), outcome.retryAfterMs ?? 0);
    return transitions.fail(uow, claim, outcome.error, retryAt, outcome.final ?? false);
  }
}

/**
 * True for an error by which the database refused the values written: PostgreSQL's data
 * exceptions (22…), integrity violations (23…) and errors raised by a trigger (P0001);
 * SQLite's constraint, mismatch and too-big errors; a value the driver cannot bind.
 */
function refusesTheValues(error: unknown): boolean {
  if (error instanceof PromisedError) return false;
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string') return /^(22|23)...$|^P0001$/.test(code) || /^SQLITE_(CONSTRAINT|MISMATCH|TOOBIG)/.test(code);
  return error instanceof TypeError || error instanceof RangeError;
}
