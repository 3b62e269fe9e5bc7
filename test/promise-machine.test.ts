import { createActor, transition } from 'xstate';
import { describe, expect, it } from 'vitest';
import { PROMISE_EVENT_TYPES, PROMISE_STATUSES, promiseMachine, type PromiseEvent, type PromiseEventType, type PromiseStatus } from '../src/machines/promise-machine.js';
import { compilePromiseLaw, machineSnapshotOf } from '../src/machines/transition-table.js';

const event = (type: PromiseEventType, attemptsLeft: boolean): PromiseEvent =>
  (type === 'FAIL'
    ? { type, attempts: attemptsLeft ? 1 : 3, maxAttempts: 3 }
    : type === 'LEASE_LOST'
      ? { type, losses: attemptsLeft ? 3 : 4, maxLosses: 3 }
      : type === 'RETRY'
        ? { type, dependenciesMet: attemptsLeft }
        : { type }) as PromiseEvent;

// Every allowed transition, written out by hand: the specification the machine must meet.
const allowed: Array<[PromiseStatus, PromiseEventType, boolean | 'any', PromiseStatus]> = [
  ['waiting', 'DEPENDENCIES_RESOLVED', 'any', 'pending'],
  ['waiting', 'DEPENDENCY_FAILED', 'any', 'failed'],
  ['waiting', 'CANCEL', 'any', 'failed'],
  ['pending', 'CLAIM', 'any', 'in_progress'],
  ['pending', 'CANCEL', 'any', 'failed'],
  ['pending', 'SKIP', 'any', 'failed'],
  ['in_progress', 'SUCCEED', 'any', 'completed'],
  ['in_progress', 'FAIL', true, 'pending'],
  ['in_progress', 'FAIL', false, 'failed'],
  ['in_progress', 'LEASE_LOST', true, 'pending'],
  ['in_progress', 'LEASE_LOST', false, 'failed'],
  ['in_progress', 'RELEASE', 'any', 'pending'],
  ['in_progress', 'CANCEL', 'any', 'failed'],
  ['failed', 'RETRY', true, 'pending'],
  ['failed', 'RETRY', false, 'waiting'],
];

function expected(status: PromiseStatus, type: PromiseEventType, attemptsLeft: boolean): PromiseStatus | undefined {
  return allowed.find(([s, e, left]) => s === status && e === type && (left === 'any' || left === attemptsLeft))?.[3];
}

describe('promise machine', () => {
  it('starts in waiting', () => {
    expect(compilePromiseLaw().initial).toBe('waiting');
  });

  for (const status of PROMISE_STATUSES) {
    for (const type of PROMISE_EVENT_TYPES) {
      for (const attemptsLeft of [true, false]) {
        const target = expected(status, type, attemptsLeft);
        const label = `${status} + ${type}${type === 'FAIL' || type === 'LEASE_LOST' || type === 'RETRY' ? (attemptsLeft ? ' (budget left)' : ' (budget spent)') : ''}`;
        if (target) {
          it(`${label} -> ${target}`, () => {
            const [next] = transition(promiseMachine, machineSnapshotOf(status), event(type, attemptsLeft));
            expect(next.value).toBe(target);
          });
        } else {
          it(`${label} is refused`, () => {
            const snapshot = machineSnapshotOf(status);
            expect(snapshot.can(event(type, attemptsLeft))).toBe(false);
            const [next] = transition(promiseMachine, snapshot, event(type, attemptsLeft));
            expect(next.value).toBe(status);
          });
        }
      }
    }
  }

  it('the compiled law agrees with the machine in every cell', () => {
    const law = compilePromiseLaw();
    for (const status of PROMISE_STATUSES) {
      for (const type of PROMISE_EVENT_TYPES) {
        for (const attemptsLeft of [true, false]) {
          const snapshot = machineSnapshotOf(status);
          const e = event(type, attemptsLeft);
          const fromMachine = snapshot.can(e) ? transition(promiseMachine, snapshot, e)[0].value : undefined;
          expect(law.next(status, type, attemptsLeft), `${status}/${type}/${attemptsLeft}`).toBe(fromMachine);
        }
      }
    }
  });

  it('guards look at the attempt counters carried by the event', () => {
    const running = machineSnapshotOf('in_progress');
    expect(transition(promiseMachine, running, { type: 'FAIL', attempts: 2, maxAttempts: 3 })[0].value).toBe('pending');
    expect(transition(promiseMachine, running, { type: 'FAIL', attempts: 3, maxAttempts: 3 })[0].value).toBe('failed');
    expect(transition(promiseMachine, running, { type: 'FAIL', attempts: 4, maxAttempts: 3 })[0].value).toBe('failed');
    // A lost lease spends the recovery budget, not the retries: a promise with no retries survives a crash.
    expect(transition(promiseMachine, running, { type: 'LEASE_LOST', losses: 1, maxLosses: 10 })[0].value).toBe('pending');
    expect(transition(promiseMachine, running, { type: 'LEASE_LOST', losses: 11, maxLosses: 10 })[0].value).toBe('failed');
  });

  it('completed is final; failed is not (it can be retried)', () => {
    expect(machineSnapshotOf('completed').status).toBe('done');
    expect(machineSnapshotOf('failed').status).toBe('active');
  });

  it('every stored snapshot restores an actor in the same state', () => {
    const law = compilePromiseLaw();
    for (const status of PROMISE_STATUSES) {
      const actor = createActor(promiseMachine, { snapshot: JSON.parse(law.snapshotText(status)) }).start();
      expect(actor.getSnapshot().value).toBe(status);
      actor.stop();
    }
  });

  it('a restored actor keeps obeying the machine', () => {
    const law = compilePromiseLaw();
    const actor = createActor(promiseMachine, { snapshot: JSON.parse(law.snapshotText('in_progress')) }).start();
    actor.send({ type: 'FAIL', attempts: 1, maxAttempts: 2 });
    expect(actor.getSnapshot().value).toBe('pending');
    actor.send({ type: 'SUCCEED' });
    expect(actor.getSnapshot().value).toBe('pending');
    actor.stop();
  });
});
