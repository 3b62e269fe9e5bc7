import { InvalidTransitionError, NotFoundError, UnknownDependencyError } from '../errors.js';
import type { PromiseEventType, PromiseStatus } from '../machines/promise-machine.js';
import type { PromiseLaw } from '../machines/transition-table.js';
import type { RowRef, StateUpdate, StoreTransaction, UnstartedRow } from '../persistence/store.js';
import { debouncedRunAt, mergeIntoDebounced, rememberedKeyHolder } from './creation-rules.js';
import { traceEnqueue, type EnqueueTrace } from './tracing.js';
import type { UnitOfWork } from './unit-of-work.js';
import type { SettledPromise, SettleHook } from './settle-hooks.js';
import { stepOf, type AppliedTransition, type ClaimRef, type ErrorRecord, type NewPromiseSpec, type StepRef, type TypePolicy } from './transition-types.js';

/** What the kernel supplies: each type's policy, how to build a follow-up, and the settle hooks. */
export interface TransitionPolicies {
  policyOf(type: string): TypePolicy;
  /** The spec of a follow-up promise of `type` carrying `payload` (priority, attempts from its task). */
  followUp(type: string, payload: unknown, now: number): NewPromiseSpec;
  /** Hooks registered on the kernel's port, run in order inside each settling transaction. */
  readonly settleHooks: readonly SettleHook[];
}

/**
 * Applies events to promise machines inside a unit of work: each function asks the machine
 * (through its compiled law) where the event leads, writes the new state and snapshot, records
 * the transition, and writes every consequence in the same transaction: children released,
 * descendants failed, dead letters and history lines recorded, completion follow-ups enqueued,
 * and the settle hooks run.
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

  async #enqueueFollowUp(uow: UnitOfWork, type: string, payload: unknown): Promise<void> {
    await this.create(uow, this.#policies.followUp(type, payload, uow.now));
  }

  async #runSettleHooks(uow: UnitOfWork, settled: SettledPromise): Promise<void> {
    for (const hook of this.#policies.settleHooks) await hook(uow, settled);
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
   * Returns `created: false` with the existing id when the idempotency key is taken. Traced as
   * an enqueue span, whose context the row keeps for whichever process runs it.
   */
  create(uow: UnitOfWork, spec: NewPromiseSpec): Promise<{ id: number; created: boolean }> {
    // Untraced, this is a direct call of #create: no frame of its own on the enqueue path.
    return traceEnqueue(spec.type, (span) => this.#create(uow, spec, span));
  }

  async #create(uow: UnitOfWork, spec: NewPromiseSpec, span: EnqueueTrace): Promise<{ id: number; created: boolean }> {
    const { tx, now } = uow;
    const found = (id: number) => (span.wrote(id, false), { id, created: false });
    if (spec.key !== null) {
      const existing = await rememberedKeyHolder(tx, spec.key, now);
      if (existing !== undefined) return found(existing);
    }
    if (spec.debounce) {
      const merged = await mergeIntoDebounced(tx, spec, now);
      if (merged !== undefined) return found(merged);
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
    const runAt = spec.debounce ? debouncedRunAt(spec.debounce, now, now) : spec.runAt;
    const expireIn = spec.expireIn ?? null;
    const id = await tx.insertPromise({
      type: spec.type,
      status,
      priority: spec.priority,
      payload: spec.payload,
      maxAttempts: spec.maxAttempts,
      runAt,
      // Runnable now (at its run-at): its deadline counts from then. A waiting one gets its deadline when released.
      expireIn,
      startBy: expireIn !== null && status === 'pending' ? runAt + expireIn : null,
      keyTtl: spec.keyTtl ?? null,
      debounceKey: spec.debounce?.key ?? null,
      snapshot: this.#law.snapshotText(status),
      idempotencyKey: spec.key,
      errorCode: error?.code ?? null,
      errorMessage: error?.message ?? null,
      workflowId: spec.workflowId ?? null,
      invokeId: spec.invokeId ?? null,
      flowKey: spec.flowKey,
      rateKey: spec.rateKey,
      traceContext: span.traceContext,
      now,
    });
    for (const parent of spec.parents) await tx.insertDependency(parent, id);
    // A key's row is what a claim pass walks to find ready keys.
    if (spec.flowKey !== null) await tx.ensureFlowKey(spec.type, spec.flowKey);
    if (event) uow.record({ id, type: spec.type, event, from: initial, to: status });
    if (error) await this.#failedForGood(uow, { id, type: spec.type, attempts: 0, step: undefined }, 'DEPENDENCY_FAILED', initial, error);
    span.wrote(id, true);
    return { id, created: true };
  }

  /** `SUCCEED` for a running claim; `false` when the claim was fenced off (taken over or cancelled). */
  async succeed(uow: UnitOfWork, claim: ClaimRef, result: string | null): Promise<boolean> {
    const { tx, now } = uow;
    const to = this.#to('in_progress', 'SUCCEED');
    const applied = await tx.updateState(this.#claimUpdate(claim, to, now, { result, completedAt: now, expiresAt: this.#expiry(claim.type, now) }));
    if (!applied) return false;
    uow.record({ id: claim.id, type: claim.type, event: 'SUCCEED', from: 'in_progress', to });
    await this.#runSettleHooks(uow, { id: claim.id, type: claim.type, step: claim.step, status: 'completed', result, error: null });
    const { onComplete } = this.#policyOf(claim.type);
    if (onComplete) {
      const payload = { promise: { id: String(claim.id), type: claim.type, status: to, result: result === null ? null : JSON.parse(result) } };
      await this.#enqueueFollowUp(uow, onComplete, payload);
    }
    await this.#releaseChildren(uow, claim.id);
    return true;
  }

  /**
   * `FAIL`: the handler threw or timed out. Back to `pending` at `retryAt` while attempts are
   * left (and the failure is not `final`), else `failed`, taking every waiting descendant with it.
   */
  async fail(uow: UnitOfWork, claim: ClaimRef, error: ErrorRecord, retryAt: number, final = false): Promise<boolean> {
    // An attempt lost with its worker counts in `attempts` but does not spend a retry.
    const to = this.#to('in_progress', 'FAIL', !final && claim.attempts - claim.leaseLosses < claim.maxAttempts);
    return this.#endAttempt(uow, claim, 'FAIL', to, error, retryAt);
  }

  /**
   * `LEASE_LOST`: the process running the claim stopped renewing its lease (it died or froze).
   * The attempt counts, but only the recovery budget decides: a crash does not fail a promise
   * that has no retries; a handler that brings its worker down every time fails after `maxLosses`.
   */
  async loseLease(uow: UnitOfWork, claim: ClaimRef, losses: number, maxLosses: number, retryAt: number): Promise<boolean> {
    const to = this.#to('in_progress', 'LEASE_LOST', losses <= maxLosses);
    const error = { code: 'LEASE_EXPIRED', message: `the process running attempt ${claim.attempts} stopped renewing its lease (lease lost ${losses} time(s))` };
    return this.#endAttempt(uow, claim, 'LEASE_LOST', to, error, retryAt);
  }

  async #endAttempt(uow: UnitOfWork, claim: ClaimRef, event: 'FAIL' | 'LEASE_LOST', to: PromiseStatus, error: ErrorRecord, retryAt: number): Promise<boolean> {
    const { tx, now } = uow;
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
    if (!applied) return false;
    uow.record({ id: claim.id, type: claim.type, event, from: 'in_progress', to });
    if (final) await this.#failedForGood(uow, { id: claim.id, type: claim.type, attempts: claim.attempts, step: claim.step }, event, 'in_progress', error);
    else await this.#history(tx, claim.id, event, 'in_progress', to, claim.attempts, error, now);
    return true;
  }

  /** `RELEASE`: a graceful stop hands a claim back without counting its attempt. */
  async release(uow: UnitOfWork, claim: ClaimRef): Promise<boolean> {
    const { tx, now } = uow;
    const to = this.#to('in_progress', 'RELEASE');
    const applied = await tx.updateState(this.#claimUpdate(claim, to, now, { attemptsRefund: 1 }));
    if (!applied) return false;
    await this.#history(tx, claim.id, 'RELEASE', 'in_progress', to, claim.attempts, null, now);
    uow.record({ id: claim.id, type: claim.type, event: 'RELEASE', from: 'in_progress', to });
    return true;
  }

  /**
   * `SKIP` for a pending promise never started by its deadline (`expireIn`): failed with
   * `EXPIRED` instead of running, whatever attempts are left, its waiting dependents with it.
   * False when it is pending no more.
   */
  async expire(uow: UnitOfWork, row: UnstartedRow): Promise<boolean> {
    const { tx, now } = uow;
    const to = this.#to('pending', 'SKIP');
    const error = { code: 'EXPIRED', message: `promise ${row.id} (${row.type}) was not started within its expireIn deadline` };
    const update = baseUpdate(row.id, 'pending', to, this.#law.snapshotText(to), now, { errorCode: error.code, errorMessage: error.message, completedAt: now, expiresAt: this.#expiry(row.type, now) });
    if (!(await tx.updateState(update))) return false;
    uow.record({ id: row.id, type: row.type, event: 'SKIP', from: 'pending', to });
    await this.#failedForGood(uow, { id: row.id, type: row.type, attempts: row.attempts, step: stepOf(row) }, 'SKIP', 'pending', error);
    return true;
  }

  /** `CANCEL` from wherever the promise is; a running claim is fenced off by the token bump. */
  cancel(uow: UnitOfWork, id: number): Promise<void> {
    return this.#stopUnfinished(uow, id, 'CANCEL', { code: 'CANCELLED', message: 'cancelled' });
  }

  /** `SKIP`: a pending promise is recorded as failed with `error` instead of being run. */
  skip(uow: UnitOfWork, id: number, error: ErrorRecord): Promise<void> {
    return this.#stopUnfinished(uow, id, 'SKIP', error);
  }

  async #stopUnfinished(uow: UnitOfWork, id: number, event: 'CANCEL' | 'SKIP', error: ErrorRecord): Promise<void> {
    const { tx, now } = uow;
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
    uow.record({ id, type: row.type, event, from: row.status, to });
    await this.#failedForGood(uow, { id, type: row.type, attempts: row.attempts, step: row.step }, event, row.status, error);
  }

  /**
   * `RETRY`: a failed promise back to `pending` now (or `waiting`, if some parent has not
   * completed), attempts reset, its dead letter removed. Its descendants that failed only with
   * `DEPENDENCY_FAILED` come back to `waiting`, so retrying the root of a failed chain runs the
   * chain again. Refused while a parent itself is failed: retry that one first.
   */
  async retry(uow: UnitOfWork, id: number, payload?: string): Promise<void> {
    const { tx, now } = uow;
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
    if (payload !== undefined) await tx.setPayload(id, payload, now);
    await tx.deleteDeadLettersOf(id);
    await this.#history(tx, id, 'RETRY', row.status, to, 0, null, now);
    uow.record({ id, type: row.type, event: 'RETRY', from: row.status, to });
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
      uow.record({ id: descendant.id, type: descendant.type, event: 'RETRY', from: 'failed', to: revivedTo });
    }
    // A revived descendant that also waits on another failed parent fails again at once.
    if (revived.length > 0) await this.settleWaiting(uow);
  }

  /**
   * Resuming: releases every waiting promise whose parents all completed and fails every one
   * with a failed parent. Both are no-ops on a consistent database (every completion did this in
   * its own transaction); they make resuming correct whatever state the file was left in.
   */
  async settleWaiting(uow: UnitOfWork): Promise<void> {
    const { tx, now } = uow;
    const released = await tx.releaseAllReadyWaiting(this.#relatives(0, 'DEPENDENCIES_RESOLVED', null, now));
    for (const row of released) uow.record(this.#relativeTransition(row, 'DEPENDENCIES_RESOLVED'));
    for (const row of await tx.waitingWithFailedParent()) {
      const error = dependencyFailure(row.id);
      const to = this.#to('waiting', 'DEPENDENCY_FAILED');
      const applied = await tx.updateState(
        baseUpdate(row.id, 'waiting', to, this.#law.snapshotText(to), now, { errorCode: error.code, errorMessage: 'a dependency failed', completedAt: now, expiresAt: this.#expiry(row.type, now) }),
      );
      if (!applied) continue;
      uow.record({ id: row.id, type: row.type, event: 'DEPENDENCY_FAILED', from: 'waiting', to });
      await this.#failedForGood(uow, { id: row.id, type: row.type, attempts: 0, step: undefined }, 'DEPENDENCY_FAILED', 'waiting', error);
    }
  }

  /**
   * Everything that follows a promise failing for good, in its transaction: its dead letter,
   * its history line, the settle hooks, its `onFail` follow-up, and the same (hooks aside) for
   * every waiting descendant.
   */
  async #failedForGood(
    uow: UnitOfWork,
    row: { id: number; type: string; attempts: number; step: StepRef | undefined },
    event: PromiseEventType,
    from: PromiseStatus,
    error: ErrorRecord,
  ): Promise<void> {
    const { tx, now } = uow;
    await tx.insertDeadLetter(row.id, error.code, error.message, now);
    await this.#history(tx, row.id, event, from, 'failed', row.attempts, error, now);
    await this.#runSettleHooks(uow, { id: row.id, type: row.type, step: row.step, status: 'failed', result: null, error });
    const { onFail } = this.#policyOf(row.type);
    if (onFail) await this.#enqueueFollowUp(uow, onFail, { promise: { id: String(row.id), type: row.type, status: 'failed', error } });
    const descendantError = dependencyFailure(row.id);
    const update = this.#relatives(row.id, 'DEPENDENCY_FAILED', descendantError, now);
    for (const descendant of await tx.failWaitingDescendants(update)) {
      uow.record(this.#relativeTransition(descendant, 'DEPENDENCY_FAILED'));
      await tx.insertDeadLetter(descendant.id, descendantError.code, descendantError.message, now);
      await this.#history(tx, descendant.id, 'DEPENDENCY_FAILED', 'waiting', 'failed', 0, descendantError, now);
      const followUp = this.#policyOf(descendant.type).onFail;
      if (followUp) {
        await this.#enqueueFollowUp(uow, followUp, { promise: { id: String(descendant.id), type: descendant.type, status: 'failed', error: descendantError } });
      }
    }
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

  async #releaseChildren(uow: UnitOfWork, parentId: number): Promise<void> {
    const rows = await uow.tx.releaseReadyChildren(this.#relatives(parentId, 'DEPENDENCIES_RESOLVED', null, uow.now));
    for (const row of rows) uow.record(this.#relativeTransition(row, 'DEPENDENCIES_RESOLVED'));
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

/** What a state update leaves as it was, unless the transition says otherwise. */
const UNCHANGED = { leaseToken: null, result: null, errorCode: null, errorMessage: null, runAt: null, attemptsRefund: 0, leaseLost: 0, resetAttempts: false, completedAt: null, expiresAt: null } as const;

function baseUpdate(id: number, from: PromiseStatus, to: PromiseStatus, snapshot: string, now: number, fields: Partial<StateUpdate>): StateUpdate {
  return { id, fromStatus: from, toStatus: to, snapshot, now, ...UNCHANGED, ...fields };
}
