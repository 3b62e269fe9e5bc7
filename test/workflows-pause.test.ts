import { fromPromise, setup } from 'xstate';
import { describe, expect, it } from 'vitest';
import { engineBackends } from './helpers/backends.js';
import { dumpDatabase } from './helpers/db-dump.js';
import { deferred, until } from './helpers/wait.js';
import { expectCode, openEngine, stopEngine } from './helpers/workflow-engines.js';

// Pausing a workflow: no step of it is claimed and no timer of it fires while paused; a step
// already running finishes and its outcome reaches the machine; resuming picks up where it was.

const placeholder = fromPromise(async () => null);

/** a (a step) → b (a step) → c (a 150 ms timer) → waiting (on GO: a step) → done. */
const line = setup({ actors: { first: placeholder, second: placeholder, last: placeholder } }).createMachine({
  id: 'line',
  initial: 'a',
  states: {
    a: { invoke: { src: 'first', onDone: 'b' } },
    b: { invoke: { src: 'second', onDone: 'c' } },
    c: { after: { 150: 'waiting' } },
    waiting: { on: { GO: 'finishing' } },
    finishing: { invoke: { src: 'last', onDone: 'done' } },
    done: { type: 'final' },
  },
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

for (const backend of engineBackends) describe.skipIf(backend.skip)(`pausing workflows on ${backend.name}`, () => {
  it('holds new steps and timers while paused (a running step finishes); resume carries on, also after a restart', async () => {
    const database = await backend.fresh();
    const calls: string[] = [];
    const firstDone = deferred();
    const steps = (gate?: Promise<void>) => ({
      first: async () => (calls.push('first'), await gate, 1),
      second: async () => (calls.push('second'), 2),
      last: async () => (calls.push('last'), 3),
    });
    const engine = await openEngine(database);
    engine.workflow('line', line, { steps: steps(firstDone.promise) });
    await engine.start();
    const id = await engine.startWorkflow('line', {});
    await until(() => calls.includes('first'), 5_000, 'the first step running');
    expect(await engine.pauseWorkflow(id)).toBe(true);
    expect(await engine.pauseWorkflow(id)).toBe(false);
    firstDone.resolve();
    // The running step's outcome moves the machine; the step it starts is held, not claimed.
    await until(async () => (await engine.getWorkflow(id))!.value === 'b', 5_000, 'state b');
    await sleep(300);
    const paused = await engine.getWorkflow(id);
    expect(paused!.pausedAt).toBeInstanceOf(Date);
    expect(calls).toEqual(['first']);
    expect(paused!.steps.map((step) => step.status)).toEqual(['completed', 'pending']);
    expect(paused!.steps[1]!.runAt.getTime()).toBeGreaterThan(Date.now() + 365 * 24 * 3600_000);

    // Across a restart it stays held.
    await stopEngine(engine);
    const second = await openEngine(database);
    second.workflow('line', line, { steps: steps() });
    await second.start();
    await sleep(300);
    expect(calls).toEqual(['first']);
    expect(await second.resumeWorkflow(id)).toBe(true);
    expect(await second.resumeWorkflow(id)).toBe(false);
    await until(async () => (await second.getWorkflow(id))!.value === 'c', 5_000, 'state c');
    expect(calls).toEqual(['first', 'second']);
    expect((await second.getWorkflow(id))!.pausedAt).toBeNull();

    // A timer is held too: paused in `c`, it does not fire.
    await second.pauseWorkflow(id);
    await sleep(400);
    expect((await second.getWorkflow(id))!.value).toBe('c');
    await second.resumeWorkflow(id);
    await until(async () => (await second.getWorkflow(id))!.value === 'waiting', 5_000, 'the held timer to fire after resume');

    // Events still reach a paused machine; the step the transition starts waits for the resume.
    await second.pauseWorkflow(id);
    expect((await second.send(id, { type: 'GO' })).outcome).toBe('accepted');
    expect((await second.getWorkflow(id))!.value).toBe('finishing');
    await sleep(300);
    expect(calls).toEqual(['first', 'second']);
    await second.resumeWorkflow(id);
    await second.workflowResult(id, { timeout: 5_000 });
    expect(calls).toEqual(['first', 'second', 'last']);
  });

  it('a paused workflow can be cancelled; its held steps are cancelled with it', async () => {
    const database = await backend.fresh();
    const engine = await openEngine(database);
    const calls: string[] = [];
    engine.workflow('line', line, { steps: { first: async () => (calls.push('first'), 1), second: async () => 2, last: async () => 3 } });
    const id = await engine.startWorkflow('line', {});
    await engine.pauseWorkflow(id);
    await engine.start();
    await sleep(200);
    expect(calls).toEqual([]);
    expect(await engine.cancelWorkflow(id)).toEqual({ outcome: 'cancelled' });
    const record = await engine.getWorkflow(id);
    expect(record).toMatchObject({ status: 'failed', error: { code: 'CANCELLED' } });
    expect(record!.steps.map((step) => [step.status, step.error?.code])).toEqual([['failed', 'CANCELLED']]);
  });

  it('pausing or resuming an unknown or finished workflow is refused before anything is written', async () => {
    const database = await backend.fresh();
    const engine = await openEngine(database);
    engine.workflow('line', line, { steps: { first: async () => 1, second: async () => 2, last: async () => 3 } });
    const id = await engine.startWorkflow('line', {});
    await engine.cancelWorkflow(id);
    const before = await dumpDatabase(database);
    await expectCode('NOT_FOUND', () => engine.pauseWorkflow('777'));
    await expectCode('NOT_FOUND', () => engine.resumeWorkflow('nope'));
    await expectCode('WORKFLOW_FINISHED', () => engine.pauseWorkflow(id));
    await expectCode('WORKFLOW_FINISHED', () => engine.resumeWorkflow(id));
    expect(await dumpDatabase(database)).toEqual(before);
  });
});
