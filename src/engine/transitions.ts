import { InvalidTransitionError, NotFoundError, UnknownDependencyError } from '../errors.js';
import type { PromiseEventType, PromiseStatus } from '../machines/promise-machine.js';
import type { PromiseLaw } from '../machines/transition-table.js';
import type { RowRef, StateUpdate, StoreTransaction } from '../persistence/store.js';

/** One state change that a transaction committed; the engine announces it after the commit. */
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
  /** Set when the promise is a workflow step. */
  step?: StepRef | undefined;
}

/** A promise that runs one invocation of a workflow. */
export interface StepRef {
  promiseId: number;
  workflowId: number;
  invokeId: string;
}

/** How a step ended, as its workflow hears it. */
export type StepOutcome = { kind: 'done'; output: unknown } | { kind: 'error'; error: ErrorRecord };

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

/** What the engine supplies: each type's policy, and how to build a follow-up promise. */
export interface TransitionPolicies {
  policyOf(type: string): TypePolicy;
  /** The spec of a follow-up promise of `type` carrying `payload` (priority, attempts from its task). */
  followUp(type: string, payload: unknown, now: number): NewPromiseSpec;
  /** A workflow step finished for good: its workflow hears of it in the same transaction. */
  stepFinished(tx: StoreTransaction, step: StepRef, outcome: StepOutcome, now: number): Promise<AppliedTransition[]>;
}

/**
 * Applies events to promise machines inside a store transaction: each function asks the
 * machine (through its compiled law) where the event leads, writes the new state and snapshot,
 * and writes every consequence in the same transaction: children released, descendants failed,
 * dead letters and history lines recorded, completion follow-ups enqueued.
 */
export class PromiseTransitions {
  readonly #law: PromiseLaw;
  readonly #policies: TransitionPolicies;

  constructor(law: PromiseLaw, policies: TransitionPolicies) {
    this.#law = law;
    this.#policies = policies;
  }

  #policyOf(type: string): TypePolicy {
    return this.#policies.policyOf(type);
  }

  async #enqueueFollowUp(tx: StoreTransaction, type: string, payload: unknown, now: number): Promise<AppliedTransition[]> {
    return (await this.create(tx, this.#policies.followUp(type, payload, now), now)).transitions;
  }

  #to(from: PromiseStatus, event: PromiseEventType, attemptsLeft = false): PromiseStatus {
    const to = this.#law.next(from, event, attemptsLeft);
    if (to === undefined) throw new Error(`promise machine refuses ${event} in ${from}: the engine asked for an impossible transition`);
    return to;
  }

  #expiry(type: string, now: number): number | null {
    const ttl = this.#policyOf(type).resultTtl;
    return ttl === null ? null : now + ttl;
  }

  /**
   * Inserts a promise in the machine's initial state, then resolves it against its parents:
   * all completed (or none) → `DEPENDENCIES_RESOLVED`; any failed → `DEPENDENCY_FAILED`.
   * Returns `created: false` with the existing id when the idempotency key is taken.
   */
  async create(tx: StoreTransaction, spec: NewPromiseSpec, now: number): Promise<{ id: number; created: boolean; transitions: AppliedTransition[] }> {
    if (spec.key !== null) {
      const existing = await tx.idByKey(spec.key);
      if (existing !== undefined) return { id: existing, created: false, transitions: [] };
    }
    let failedParent: number | undefined;
    let unfinishedParents = 0;
    for (const parent of spec.parents) {
      const status = await tx.statusOf(parent);
      if (status === undefined) throw new UnknownDependencyError(String(parent));
      if (status === 'failed') failedParent ??= parent;
      else if (status !== 'completed') unfinishedParents++;
    }
    const initial = this.#law.initial;
    let status = initial;
    let event: PromiseEventType | undefined;
    let error: ErrorRecord | null = null;
    if (failedParent !== undefined) {
      event = 'DEPENDENCY_FAILED';
      error = dependencyFailure(failedParent);
    } else if (unfinishedParents === 0) {
      event = 'DEPENDENCIES_RESOLVED';
    }
    if (event) status = this.#to(initial, event);
    const id = await tx.insertPromise({
      type: spec.type,
      status,
      priority: spec.priority,
      payload: spec.payload,
      maxAttempts: spec.maxAttempts,
      runAt: spec.runAt,
      snapshot: this.#law.snapshotText(status),
      idempotencyKey: spec.key,
      errorCode: error?.code ?? null,
      errorMessage: error?.message ?? null,
      workflowId: spec.workflowId ?? null,
      invokeId: spec.invokeId ?? null,
      now,
    });
    for (const parent of spec.parents) await tx.insertDependency(parent, id);
    const transitions: AppliedTransition[] = event ? [{ id, type: spec.type, event, from: initial, to: status }] : [];
    if (error) transitions.push(...(await this.#failedForGood(tx, { id, type: spec.type, attempts: 0 }, 'DEPENDENCY_FAILED', initial, error, now)));
    return { id, created: true, transitions };
  }

  /** `SUCCEED` for a running claim; `null` when the claim was fenced off (taken over or cancelled). */
  async succeed(tx: StoreTransaction, claim: ClaimRef, result: string | null, now: number): Promise<AppliedTransition[] | null> {
    const to = this.#to('in_progress', 'SUCCEED');
    const applied = await tx.updateState(this.#claimUpdate(claim, to, now, { result, completedAt: now, expiresAt: this.#expiry(claim.type, now) }));
    if (!applied) return null;
    const transitions: AppliedTransition[] = [{ id: claim.id, type: claim.type, event: 'SUCCEED', from: 'in_progress', to }];
    if (claim.step) transitions.push(...(await this.#policies.stepFinished(tx, claim.step, { kind: 'done', output: result === null ? null : JSON.parse(result) }, now)));
    const { onComplete } = this.#policyOf(claim.type);
    if (onComplete) {
      const payload = { promise: { id: String(claim.id), type: claim.type, status: to, result: result === null ? null : JSON.parse(result) } };
      transitions.push(...(await this.#enqueueFollowUp(tx, onComplete, payload, now)));
    }
    transitions.push(...(await this.#releaseChildren(tx, claim.id, now)));
    return transitions;
  }

  /**
   * `FAIL`: the handler threw or timed out. Back to `pending` at `retryAt` while attempts are
   * left, else `failed`, taking every waiting descendant with it.
   */
  async fail(tx: StoreTransaction, claim: ClaimRef, error: ErrorRecord, retryAt: number, now: number): Promise<AppliedTransition[] | null> {
    const to = this.#to('in_progress', 'FAIL', claim.attempts < claim.maxAttempts);
    return this.#endAttempt(tx, claim, 'FAIL', to, error, retryAt, now);
  }

  /**
   * `LEASE_LOST`: the process running the claim stopped renewing its lease (it died or froze).
   * The attempt counts, but only the recovery budget decides: a crash does not fail a promise
   * that has no retries; a handler that brings its worker down every time fails after `maxLosses`.
   */
  async loseLease(tx: StoreTransaction, claim: ClaimRef, losses: number, maxLosses: number, retryAt: number, now: number): Promise<AppliedTransition[] | null> {
    const to = this.#to('in_progress', 'LEASE_LOST', losses <= maxLosses);
    const error = { code: 'LEASE_EXPIRED', message: `the process running attempt ${claim.attempts} stopped renewing its lease (lease lost ${losses} time(s))` };
    return this.#endAttempt(tx, claim, 'LEASE_LOST', to, error, retryAt, now);
  }

  async #endAttempt(
    tx: StoreTransaction,
    claim: ClaimRef,
    event: 'FAIL' | 'LEASE_LOST',
    to: PromiseStatus,
    error: ErrorRecord,
    retryAt: number,
    now: number,
  ): Promise<AppliedTransition[] | null> {
    const final = to === 'failed';
    const applied = await tx.updateState(
      this.#claimUpdate(claim, to, now, {
        errorCode: error.code,
        errorMessage: error.message,
        runAt: final ? null : retryAt,
        completedAt: final ? now : null,
        expiresAt: final ? this.#expiry(claim.type, now) : null,
        leaseLost: event === 'LEASE_LOST' ? 1 : 0,
      }),
    );
    if (!applied) return null;
    const own: AppliedTransition = { id: claim.id, type: claim.type, event, from: 'in_progress', to };
    if (!final) {
      await this.#history(tx, claim.id, event, 'in_progress', to, claim.attempts, error, now);
      return [own];
    }
    return [own, ...(await this.#failedForGood(tx, { id: claim.id, type: claim.type, attempts: claim.attempts, step: claim.step }, event, 'in_progress', error, now))];
  }

  /** `RELEASE`: a graceful stop hands a claim back without counting its attempt. */
  async release(tx: StoreTransaction, claim: ClaimRef, now: number): Promise<AppliedTransition[] | null> {
    const to = this.#to('in_progress', 'RELEASE');
    const applied = await tx.updateState(this.#claimUpdate(claim, to, now, { attemptsRefund: 1 }));
    if (!applied) return null;
    await this.#history(tx, claim.id, 'RELEASE', 'in_progress', to, claim.attempts, null, now);
    return [{ id: claim.id, type: claim.type, event: 'RELEASE', from: 'in_progress', to }];
  }

  /** `CANCEL` from wherever the promise is; a running claim is fenced off by the token bump. */
  async cancel(tx: StoreTransaction, id: number, now: number): Promise<AppliedTransition[]> {
    return this.#stopUnfinished(tx, id, 'CANCEL', { code: 'CANCELLED', message: 'cancelled' }, now);
  }

  /** `SKIP`: a pending promise is recorded as failed with `error` instead of being run. */
  async skip(tx: StoreTransaction, id: number, error: ErrorRecord, now: number): Promise<AppliedTransition[]> {
    return this.#stopUnfinished(tx, id, 'SKIP', error, now);
  }

  async #stopUnfinished(tx: StoreTransaction, id: number, event: 'CANCEL' | 'SKIP', error: ErrorRecord, now: number): Promise<AppliedTransition[]> {
    const row = await this.#rowOrThrow(tx, id);
    const to = this.#law.next(row.status, event);
    if (to === undefined) throw new InvalidTransitionError(String(id), row.status, event);
    await tx.updateState(
      baseUpdate(id, row.status, to, this.#law.snapshotText(to), now, {
        errorCode: error.code,
        errorMessage: error.message,
        completedAt: now,
        expiresAt: this.#expiry(row.type, now),
      }),
    );
    const own: AppliedTransition = { id, type: row.type, event, from: row.status, to };
    return [own, ...(await this.#failedForGood(tx, { id, type: row.type, attempts: row.attempts, step: row.step }, event, row.status, error, now))];
  }

  /**
   * `RETRY`: a failed promise back to `pending` now (or `waiting`, if some parent has not
   * completed), attempts reset, its dead letter removed. Its descendants that failed only with
   * `DEPENDENCY_FAILED` come back to `waiting`, so retrying the root of a failed chain runs the
   * chain again. Refused while a parent itself is failed: retry that one first.
   */
  async retry(tx: StoreTransaction, id: number, now: number): Promise<AppliedTransition[]> {
    const row = await this.#rowOrThrow(tx, id);
    const parents = await tx.parentStatesOf(id);
    const failedParent = parents.find((parent) => parent.status === 'failed');
    if (row.status === 'failed' && failedParent) {
      throw new InvalidTransitionError(String(id), row.status, `RETRY while its dependency ${failedParent.id} is failed (retry ${failedParent.id} first)`);
    }
    const dependenciesMet = parents.every((parent) => parent.status === 'completed');
    const to = this.#law.next(row.status, 'RETRY', dependenciesMet);
    if (to === undefined) throw new InvalidTransitionError(String(id), row.status, 'RETRY');
    await tx.updateState(baseUpdate(id, row.status, to, this.#law.snapshotText(to), now, { runAt: now, resetAttempts: true }));
    await tx.deleteDeadLettersOf(id);
    await this.#history(tx, id, 'RETRY', row.status, to, 0, null, now);
    const transitions: AppliedTransition[] = [{ id, type: row.type, event: 'RETRY', from: row.status, to }];
    const revivedTo = this.#to('failed', 'RETRY', false);
    const revived = await tx.reviveFailedDescendants({
      parentId: id,
      toStatus: revivedTo,
      snapshot: this.#law.snapshotText(revivedTo),
      errorCode: null,
      errorMessage: null,
      expiresAt: null,
      now,
    });
    for (const descendant of revived) {
      await tx.deleteDeadLettersOf(descendant.id);
      await this.#history(tx, descendant.id, 'RETRY', 'failed', revivedTo, 0, null, now);
      transitions.push({ id: descendant.id, type: descendant.type, event: 'RETRY', from: 'failed', to: revivedTo });
    }
    // A revived descendant that also waits on another failed parent fails again at once.
    if (revived.length > 0) transitions.push(...(await this.settleWaiting(tx, now)));
    return transitions;
  }

  /**
   * Resuming: releases every waiting promise whose parents all completed and fails every one
   * with a failed parent. Both are no-ops on a consistent database (every completion did this in
   * its own transaction); they make resuming correct whatever state the file was left in.
   */
  async settleWaiting(tx: StoreTransaction, now: number): Promise<AppliedTransition[]> {
    const released = await tx.releaseAllReadyWaiting(this.#relatives(0, 'DEPENDENCIES_RESOLVED', null, now));
    const transitions = released.map((row) => this.#relativeTransition(row, 'DEPENDENCIES_RESOLVED'));
    for (const row of await tx.waitingWithFailedParent()) {
      const error = dependencyFailure(row.id);
      const to = this.#to('waiting', 'DEPENDENCY_FAILED');
      const applied = await tx.updateState(
        baseUpdate(row.id, 'waiting', to, this.#law.snapshotText(to), now, { errorCode: error.code, errorMessage: 'a dependency failed', completedAt: now, expiresAt: this.#expiry(row.type, now) }),
      );
      if (!applied) continue;
      transitions.push({ id: row.id, type: row.type, event: 'DEPENDENCY_FAILED', from: 'waiting', to });
      transitions.push(...(await this.#failedForGood(tx, { id: row.id, type: row.type, attempts: 0 }, 'DEPENDENCY_FAILED', 'waiting', error, now)));
    }
    return transitions;
  }

  /**
   * Everything that follows a promise failing for good, in its transaction: its dead letter,
   * its history line, its `onFail` follow-up, and the same for every waiting descendant.
   */
  async #failedForGood(
    tx: StoreTransaction,
    row: { id: number; type: string; attempts: number; step?: StepRef | undefined },
    event: PromiseEventType,
    from: PromiseStatus,
    error: ErrorRecord,
    now: number,
  ): Promise<AppliedTransition[]> {
    await tx.insertDeadLetter(row.id, error.code, error.message, now);
    await this.#history(tx, row.id, event, from, 'failed', row.attempts, error, now);
    const transitions: AppliedTransition[] = [];
    if (row.step) transitions.push(...(await this.#policies.stepFinished(tx, row.step, { kind: 'error', error }, now)));
    const { onFail } = this.#policyOf(row.type);
    if (onFail) {
      const payload = { promise: { id: String(row.id), type: row.type, status: 'failed', error } };
      transitions.push(...(await this.#enqueueFollowUp(tx, onFail, payload, now)));
    }
    const descendantError = dependencyFailure(row.id);
    const update = this.#relatives(row.id, 'DEPENDENCY_FAILED', descendantError, now);
    for (const descendant of await tx.failWaitingDescendants(update)) {
      transitions.push(this.#relativeTransition(descendant, 'DEPENDENCY_FAILED'));
      await tx.insertDeadLetter(descendant.id, descendantError.code, descendantError.message, now);
      await this.#history(tx, descendant.id, 'DEPENDENCY_FAILED', 'waiting', 'failed', 0, descendantError, now);
      const followUp = this.#policyOf(descendant.type).onFail;
      if (followUp) {
        const payload = { promise: { id: String(descendant.id), type: descendant.type, status: 'failed', error: descendantError } };
        transitions.push(...(await this.#enqueueFollowUp(tx, followUp, payload, now)));
      }
    }
    return transitions;
  }

  async #history(
    tx: StoreTransaction,
    promiseId: number,
    event: PromiseEventType,
    from: PromiseStatus,
    to: PromiseStatus,
    attempt: number,
    error: ErrorRecord | null,
    at: number,
  ): Promise<void> {
    await tx.insertHistory({ promiseId, event, from, to, attempt, errorCode: error?.code ?? null, errorMessage: error?.message ?? null, at });
  }

  async #rowOrThrow(tx: StoreTransaction, id: number): Promise<{ status: PromiseStatus; type: string; attempts: number; step: StepRef | undefined }> {
    const row = await tx.stateOf(id);
    if (row === undefined) throw new NotFoundError(String(id));
    return { status: row.status as PromiseStatus, type: row.type, attempts: row.attempts, step: stepOf({ id, ...row }) };
  }

  #claimUpdate(claim: ClaimRef, to: PromiseStatus, now: number, fields: Partial<StateUpdate>): StateUpdate {
    return { ...baseUpdate(claim.id, 'in_progress', to, this.#law.snapshotText(to), now, fields), leaseToken: claim.leaseToken };
  }

  async #releaseChildren(tx: StoreTransaction, parentId: number, now: number): Promise<AppliedTransition[]> {
    const rows = await tx.releaseReadyChildren(this.#relatives(parentId, 'DEPENDENCIES_RESOLVED', null, now));
    return rows.map((row) => this.#relativeTransition(row, 'DEPENDENCIES_RESOLVED'));
  }

  #relatives(parentId: number, event: 'DEPENDENCIES_RESOLVED' | 'DEPENDENCY_FAILED', error: ErrorRecord | null, now: number) {
    const toStatus = this.#to('waiting', event);
    // Cascaded failures expire after the engine's default; their own type's is not known per row here.
    const expiresAt = toStatus === 'failed' ? this.#expiry('', now) : null;
    return { parentId, toStatus, snapshot: this.#law.snapshotText(toStatus), errorCode: error?.code ?? null, errorMessage: error?.message ?? null, expiresAt, now };
  }

  #relativeTransition(row: RowRef, event: 'DEPENDENCIES_RESOLVED' | 'DEPENDENCY_FAILED'): AppliedTransition {
    return { id: row.id, type: row.type, event, from: 'waiting', to: this.#to('waiting', event) };
  }
}

function dependencyFailure(parentId: number): ErrorRecord {
  return { code: 'DEPENDENCY_FAILED', message: `dependency ${parentId} failed` };
}

function baseUpdate(id: number, from: PromiseStatus, to: PromiseStatus, snapshot: string, now: number, fields: Partial<StateUpdate>): StateUpdate {
  return {
    id,
    fromStatus: from,
    leaseToken: null,
    toStatus: to,
    snapshot,
    result: null,
    errorCode: null,
    errorMessage: null,
    runAt: null,
    attemptsRefund: 0,
    leaseLost: 0,
    resetAttempts: false,
    completedAt: null,
    expiresAt: null,
    now,
    ...fields,
  };
}
