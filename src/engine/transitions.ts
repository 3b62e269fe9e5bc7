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
}

export interface NewPromiseSpec {
  type: string;
  payload: string;
  priority: number;
  maxAttempts: number;
  runAt: number;
  key: string | null;
  parents: number[];
}

export interface ErrorRecord {
  code: string;
  message: string;
}

/**
 * Applies events to promise machines inside a store transaction: each function asks the
 * machine (through its compiled law) where the event leads, writes the new state and snapshot,
 * and writes every consequence (children released, descendants failed) in the same transaction.
 */
export class PromiseTransitions {
  readonly #law: PromiseLaw;

  constructor(law: PromiseLaw) {
    this.#law = law;
  }

  #to(from: PromiseStatus, event: PromiseEventType, attemptsLeft = false): PromiseStatus {
    const to = this.#law.next(from, event, attemptsLeft);
    if (to === undefined) throw new Error(`promise machine refuses ${event} in ${from}: the engine asked for an impossible transition`);
    return to;
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
      now,
    });
    for (const parent of spec.parents) await tx.insertDependency(parent, id);
    const transitions = event ? [{ id, type: spec.type, event, from: initial, to: status }] : [];
    return { id, created: true, transitions };
  }

  /** `SUCCEED` for a running claim; `null` when the claim was fenced off (taken over or cancelled). */
  async succeed(tx: StoreTransaction, claim: ClaimRef, result: string | null, now: number): Promise<AppliedTransition[] | null> {
    const to = this.#to('in_progress', 'SUCCEED');
    const applied = await tx.updateState(this.#claimUpdate(claim, to, now, { result, completedAt: now }));
    if (!applied) return null;
    return [{ id: claim.id, type: claim.type, event: 'SUCCEED', from: 'in_progress', to }, ...(await this.#releaseChildren(tx, claim.id, now))];
  }

  /**
   * `FAIL` (the handler threw or timed out) or `LEASE_LOST` (its process stopped renewing the
   * lease) for a claim: back to `pending` at `retryAt` while attempts are left, else `failed`,
   * taking every waiting descendant with it.
   */
  async fail(
    tx: StoreTransaction,
    claim: ClaimRef,
    event: 'FAIL' | 'LEASE_LOST',
    error: ErrorRecord,
    retryAt: number,
    now: number,
  ): Promise<AppliedTransition[] | null> {
    const to = this.#to('in_progress', event, claim.attempts < claim.maxAttempts);
    const final = to === 'failed';
    const applied = await tx.updateState(
      this.#claimUpdate(claim, to, now, {
        errorCode: error.code,
        errorMessage: error.message,
        runAt: final ? null : retryAt,
        completedAt: final ? now : null,
      }),
    );
    if (!applied) return null;
    const own: AppliedTransition = { id: claim.id, type: claim.type, event, from: 'in_progress', to };
    return final ? [own, ...(await this.#failDescendants(tx, claim.id, now))] : [own];
  }

  /** `RELEASE`: a graceful stop hands a claim back without counting its attempt. */
  async release(tx: StoreTransaction, claim: ClaimRef, now: number): Promise<AppliedTransition[] | null> {
    const to = this.#to('in_progress', 'RELEASE');
    const applied = await tx.updateState(this.#claimUpdate(claim, to, now, { attemptsRefund: 1 }));
    return applied ? [{ id: claim.id, type: claim.type, event: 'RELEASE', from: 'in_progress', to }] : null;
  }

  /** `CANCEL` from wherever the promise is; a running claim is fenced off by the token bump. */
  async cancel(tx: StoreTransaction, id: number, now: number): Promise<AppliedTransition[]> {
    const from = await this.#statusOrThrow(tx, id);
    const to = this.#law.next(from, 'CANCEL');
    if (to === undefined) throw new InvalidTransitionError(String(id), from, 'CANCEL');
    await tx.updateState(
      baseUpdate(id, from, to, this.#law.snapshotText(to), now, {
        errorCode: 'CANCELLED',
        errorMessage: 'cancelled',
        completedAt: to === 'failed' ? now : null,
      }),
    );
    const own: AppliedTransition = { id, type: '', event: 'CANCEL', from, to };
    return to === 'failed' ? [own, ...(await this.#failDescendants(tx, id, now))] : [own];
  }

  /** `RETRY`: a failed promise back to `pending` now, attempts reset. */
  async retry(tx: StoreTransaction, id: number, now: number): Promise<AppliedTransition[]> {
    const from = await this.#statusOrThrow(tx, id);
    const to = this.#law.next(from, 'RETRY');
    if (to === undefined) throw new InvalidTransitionError(String(id), from, 'RETRY');
    await tx.updateState(baseUpdate(id, from, to, this.#law.snapshotText(to), now, { runAt: now, resetAttempts: true }));
    return [{ id, type: '', event: 'RETRY', from, to }];
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
      transitions.push(...(await this.#failDescendants(tx, row.id, now, true)));
    }
    return transitions;
  }

  async #statusOrThrow(tx: StoreTransaction, id: number): Promise<PromiseStatus> {
    const status = await tx.statusOf(id);
    if (status === undefined) throw new NotFoundError(String(id));
    return status as PromiseStatus;
  }

  #claimUpdate(claim: ClaimRef, to: PromiseStatus, now: number, fields: Partial<StateUpdate>): StateUpdate {
    return { ...baseUpdate(claim.id, 'in_progress', to, this.#law.snapshotText(to), now, fields), leaseToken: claim.leaseToken };
  }

  async #releaseChildren(tx: StoreTransaction, parentId: number, now: number): Promise<AppliedTransition[]> {
    const rows = await tx.releaseReadyChildren({ ...this.#relatives(parentId, 'DEPENDENCIES_RESOLVED', null, now) });
    return rows.map((row) => this.#relativeTransition(row, 'DEPENDENCIES_RESOLVED'));
  }

  async #failDescendants(tx: StoreTransaction, parentId: number, now: number, includeSelf = false): Promise<AppliedTransition[]> {
    const update = this.#relatives(parentId, 'DEPENDENCY_FAILED', dependencyFailure(parentId), now);
    const rows = await tx.failWaitingDescendants(update);
    if (includeSelf) {
      const applied = await tx.updateState(baseUpdate(parentId, 'waiting', update.toStatus, update.snapshot, now, { errorCode: update.errorCode, errorMessage: update.errorMessage, completedAt: now }));
      if (applied) rows.unshift({ id: parentId, type: '' });
    }
    return rows.map((row) => this.#relativeTransition(row, 'DEPENDENCY_FAILED'));
  }

  #relatives(parentId: number, event: 'DEPENDENCIES_RESOLVED' | 'DEPENDENCY_FAILED', error: ErrorRecord | null, now: number) {
    const toStatus = this.#to('waiting', event);
    return { parentId, toStatus, snapshot: this.#law.snapshotText(toStatus), errorCode: error?.code ?? null, errorMessage: error?.message ?? null, now };
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
    resetAttempts: false,
    completedAt: null,
    now,
    ...fields,
  };
}
