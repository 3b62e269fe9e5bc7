import { initialTransition, transition } from 'xstate';
import {
  GUARDED_EVENT_TYPES,
  PROMISE_EVENT_TYPES,
  PROMISE_STATUSES,
  promiseMachine,
  type PromiseEvent,
  type PromiseEventType,
  type PromiseStatus,
} from './promise-machine.js';

/**
 * The promise machine compiled into a lookup table, once, by asking XState itself.
 *
 * Why: calling `transition()` costs tens of microseconds, as much as the SQLite commit it
 * guards, and a bulk SQL statement (release every ready child) cannot call it per row. The
 * machine stays the law: every cell here is what `transition()` answered for that state and
 * event, and a test checks the table against the machine for every combination.
 */
export interface PromiseLaw {
  /** The state a new promise's machine starts in. */
  readonly initial: PromiseStatus;
  /**
   * The state after `event` in `status`, or `undefined` when the machine refuses it.
   * `attemptsLeft` (the event's condition holds) only matters for guarded events
   * (`FAIL`: retries left; `LEASE_LOST`: recoveries left; `RETRY`: dependencies met).
   */
  next(status: PromiseStatus, event: PromiseEventType, attemptsLeft?: boolean): PromiseStatus | undefined;
  /** The persisted XState snapshot of a promise machine in `status`, as stored JSON text. */
  snapshotText(status: PromiseStatus): string;
}

type Cell = readonly [whenNoAttemptsLeft: PromiseStatus | undefined, whenAttemptsLeft: PromiseStatus | undefined];

function sampleEvent(type: PromiseEventType, attemptsLeft: boolean): PromiseEvent {
  if (type === 'LEASE_LOST') return { type, losses: attemptsLeft ? 1 : 3, maxLosses: 2 };
  if (type === 'RETRY') return { type, dependenciesMet: attemptsLeft };
  if (GUARDED_EVENT_TYPES.has(type)) {
    return { type, attempts: attemptsLeft ? 1 : 2, maxAttempts: 2 } as PromiseEvent;
  }
  return { type } as PromiseEvent;
}

/** The machine's snapshot for a state, as XState resolves it. */
export function machineSnapshotOf(status: PromiseStatus) {
  return promiseMachine.resolveState({ value: status, context: {} });
}

/**
 * Builds the table by running `transition()` for every state, event and guard outcome. Each cell
 * (and each state's snapshot) is asked of XState the first time it is needed and kept: a short
 * command that enqueues one promise needs two of them, and building all of them at import was a
 * tenth of its start-up.
 */
export function compilePromiseLaw(): PromiseLaw {
  const table = new Map<string, Cell>();
  const snapshots = new Map<PromiseStatus, ReturnType<typeof machineSnapshotOf>>();
  const snapshotTexts = new Map<PromiseStatus, string>();
  const snapshotOf = (status: PromiseStatus) => {
    let snapshot = snapshots.get(status);
    if (snapshot === undefined) snapshots.set(status, (snapshot = machineSnapshotOf(status)));
    return snapshot;
  };
  const cellOf = (status: PromiseStatus, type: PromiseEventType): Cell => {
    const key = `${status}/${type}`;
    let cell = table.get(key);
    if (cell === undefined) {
      const snapshot = snapshotOf(status);
      const outcome = (attemptsLeft: boolean): PromiseStatus | undefined => {
        const event = sampleEvent(type, attemptsLeft);
        if (!snapshot.can(event)) return undefined;
        const [next] = transition(promiseMachine, snapshot, event);
        return next.value as PromiseStatus;
      };
      table.set(key, (cell = [outcome(false), outcome(true)]));
    }
    return cell;
  };
  let initial: PromiseStatus | undefined;
  return {
    get initial() {
      return (initial ??= initialTransition(promiseMachine)[0].value as PromiseStatus);
    },
    next: (status, event, attemptsLeft = false) => (PROMISE_STATUSES.includes(status) && PROMISE_EVENT_TYPES.includes(event) ? cellOf(status, event)[attemptsLeft ? 1 : 0] : undefined),
    snapshotText: (status) => {
      let text = snapshotTexts.get(status);
      if (text === undefined) snapshotTexts.set(status, (text = JSON.stringify(promiseMachine.getPersistedSnapshot(snapshotOf(status)))));
      return text;
    },
  };
}

/** The compiled law, shared: it is immutable, and each cell is built once, when first asked. */
export const promiseLaw: PromiseLaw = compilePromiseLaw();
