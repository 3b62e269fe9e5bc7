import { setup } from 'xstate';

/** The five states of a promise, in the order a healthy one passes through them. */
export const PROMISE_STATUSES = ['waiting', 'pending', 'in_progress', 'completed', 'failed'] as const;
/** A promise's status: `waiting | pending | in_progress | completed | failed`. */
export type PromiseStatus = (typeof PROMISE_STATUSES)[number];
/** The statuses of a promise that is not finished yet. */
export const UNFINISHED_STATUSES = ['waiting', 'pending', 'in_progress'] as const satisfies readonly PromiseStatus[];

/**
 * The counters a guard needs. They live in the database row (the truth), not in machine
 * context, and travel with the event: so the machine's persisted snapshot depends on its
 * state alone, and a bulk SQL transition can write it without running XState per row.
 */
export interface AttemptFacts {
  /** Attempts made so far, including the one that just ended. */
  attempts: number;
  maxAttempts: number;
}

/**
 * The counters the `LEASE_LOST` guard needs. A lost lease (the worker died or froze) counts as
 * an attempt, but it is budgeted apart from the handler's own failures: a crash must not fail a
 * promise that has no retries, yet a handler that kills its worker every time must end.
 */
export interface LeaseLossFacts {
  /** Leases lost so far, including this one. */
  losses: number;
  maxLosses: number;
}

/** Every event a promise machine accepts. */
export type PromiseEvent =
  | { type: 'DEPENDENCIES_RESOLVED' }
  | { type: 'DEPENDENCY_FAILED' }
  | { type: 'CLAIM' }
  | { type: 'SUCCEED' }
  | ({ type: 'FAIL' } & AttemptFacts)
  | ({ type: 'LEASE_LOST' } & LeaseLossFacts)
  | { type: 'RELEASE' }
  | { type: 'CANCEL' }
  | { type: 'SKIP' }
  /** `dependenciesMet`: every parent has completed (a retried promise waits for the others). */
  | { type: 'RETRY'; dependenciesMet: boolean };

/** The name of an event the promise machine accepts (`CLAIM`, `SUCCEED`, `FAIL`, …). */
export type PromiseEventType = PromiseEvent['type'];

/** Every event type of the promise machine, for tables and tests that go through them all. */
export const PROMISE_EVENT_TYPES: readonly PromiseEventType[] = [
  'DEPENDENCIES_RESOLVED',
  'DEPENDENCY_FAILED',
  'CLAIM',
  'SUCCEED',
  'FAIL',
  'LEASE_LOST',
  'RELEASE',
  'CANCEL',
  'SKIP',
  'RETRY',
];

/** Events whose outcome depends on a budget ({@link AttemptFacts}, {@link LeaseLossFacts}). */
export const GUARDED_EVENT_TYPES: ReadonlySet<PromiseEventType> = new Set(['FAIL', 'LEASE_LOST', 'RETRY']);

/**
 * The law of a promise. `waiting` holds until every parent completed; `pending` is runnable
 * (at or after its run-at); `in_progress` is claimed under a lease; `completed` is final;
 * `failed` rests until an explicit `RETRY`.
 *
 * @example
 * ```ts
 * import { transition } from 'xstate';
 * const [next] = transition(promiseMachine, snapshotOf('in_progress'), { type: 'FAIL', attempts: 1, maxAttempts: 3 });
 * next.value; // 'pending': a retry is left
 * ```
 */
export const promiseMachine = setup({
  types: {
    events: {} as PromiseEvent,
  },
  guards: {
    hasAttemptsLeft: ({ event }) => 'attempts' in event && event.attempts < event.maxAttempts,
    hasRecoveriesLeft: ({ event }) => 'losses' in event && event.losses <= event.maxLosses,
    dependenciesMet: ({ event }) => 'dependenciesMet' in event && event.dependenciesMet,
  },
}).createMachine({
  id: 'promise',
  initial: 'waiting',
  states: {
    waiting: {
      on: {
        DEPENDENCIES_RESOLVED: 'pending',
        DEPENDENCY_FAILED: 'failed',
        CANCEL: 'failed',
      },
    },
    pending: {
      on: {
        CLAIM: 'in_progress',
        CANCEL: 'failed',
        // An inbox message that waited longer than its catch-up window is recorded, not run.
        SKIP: 'failed',
      },
    },
    in_progress: {
      on: {
        SUCCEED: 'completed',
        FAIL: [{ guard: 'hasAttemptsLeft', target: 'pending' }, { target: 'failed' }],
        LEASE_LOST: [{ guard: 'hasRecoveriesLeft', target: 'pending' }, { target: 'failed' }],
        RELEASE: 'pending',
        CANCEL: 'failed',
      },
    },
    completed: { type: 'final' },
    failed: {
      on: {
        RETRY: [{ guard: 'dependenciesMet', target: 'pending' }, { target: 'waiting' }],
      },
    },
  },
});

export type PromiseMachine = typeof promiseMachine;
