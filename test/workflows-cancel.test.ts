import { assign, createMachine, fromPromise, setup } from 'xstate';
import { describe, expect, it } from 'vitest';
import { PromisedError } from '../src/index.js';
import { engineBackends } from './helpers/backends.js';
import { dumpDatabase } from './helpers/db-dump.js';
import { deferred, until } from './helpers/wait.js';
import { countRows, expectCode, openEngine, readRows } from './helpers/workflow-engines.js';

// Cancelling a workflow: its running steps aborted and their late outcomes refused, its child
// workflows cancelled, its timers and kept events dropped; it ends failed with CANCELLED. A
// machine that handles `promised.cancel` compensates first (a saga).

const placeholder = fromPromise(async () => null);

/** Three regions: a step (then a state that accepts APPROVE), a child workflow, a long timer. */
const busy = setup({ actors: { work: placeholder, kid: placeholder } }).createMachine({
  id: 'busy',
  type: 'parallel',
  states: {
    working: { initial: 'running', states: { running: { invoke: { src: 'work', onDone: 'review' } }, review: { on: { APPROVE: 'approved' } }, approved: { type: 'final' } } },
    child: { initial: 'running', states: { running: { invoke: { src: 'kid', onDone: 'done' } }, done: { type: 'final' } } },
    waiting: { initial: 'long', states: { long: { after: { 3_600_000: 'over' } }, over: { type: 'final' } } },
  },
});

const kid = setup({ actors: { nap: placeholder } }).createMachine({ id: 'kid', initial: 'napping', states: { napping: { invoke: { src: 'nap', onDone: 'done' } }, done: { type: 'final' } } });

/** A saga: booking a trip; cancelled while booking, it releases what it booked. */
const trip = setup({ types: { context: {} as { booked: string[]; released: string[] } }, actors: { book: placeholder, release: placeholder } }).createMachine({
  id: 'trip',
  context: { booked: ['hotel'], released: [] },
  initial: 'booking',
  states: {
    booking: { invoke: { src: 'book', onDone: 'booked' }, on: { 'promised.cancel': 'compensating' } },
    booked: { type: 'final' },
    compensating: {
      invoke: { src: 'release', input: ({ context }) => context.booked, onDone: { target: 'released', actions: assign({ released: ({ event }) => event.output as unknown as string[] }) } },
    },
    released: { type: 'final' },
  },
});

/** A signal-aware step that, once aborted, returns late anyway: its outcome must be refused. */
function stubbornStep(started: { resolve: () => void }, aborted: string[]) {
  return (_input: unknown, ctx: { signal: AbortSignal }) =>
    new Promise((resolve) => {
      started.resolve();
      ctx.signal.addEventListener('abort', () => {
        aborted.push((ctx.signal.reason as PromisedError).code);
        setTimeout(() => resolve('late outcome'), 20);
      });
    });
}

for (const backend of engineBackends) describe.skipIf(backend.skip)(`cancelling workflows on ${backend.name}`, () => {
  it('aborts running steps and refuses their late outcomes, cancels child workflows, drops timers and kept events', async () => {
    const database = await backend.fresh();
    const engine = await openEngine(database);
    const started = deferred();
    const napping = deferred();
    const aborted: string[] = [];
    engine.workflow('kid', kid, { steps: { nap: (_input, ctx) => (napping.resolve(), new Promise((_r, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)))) } });
    engine.workflow('busy', busy, { steps: { work: stubbornStep(started, aborted), kid: { workflow: 'kid' } } });
    await engine.start();
    const id = await engine.startWorkflow('busy', {});
    await started.promise;
    await napping.promise;
    expect((await engine.send(id, { type: 'APPROVE' })).outcome).toBe('kept');
    expect(await countRows(database, 'workflow_timers')).toBe(1);

    expect(await engine.cancelWorkflow(id)).toEqual({ outcome: 'cancelled' });
    await expect(engine.workflowResult(id, { timeout: 5_000 })).rejects.toMatchObject({ error: { code: 'CANCELLED' } });
    await until(() => aborted.length > 0, 5_000, 'the running step to be aborted');
    expect(aborted).toEqual(['CANCELLED']);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const record = await engine.getWorkflow(id);
    expect(record).toMatchObject({ status: 'failed', error: { code: 'CANCELLED' }, keptEvents: [] });
    // The late outcome was refused: the step stays failed with CANCELLED, no result stored.
    expect(record!.steps.map((step) => [step.type, step.status, step.error?.code, step.result])).toEqual([
      ['workflow:busy:work', 'failed', 'CANCELLED', null],
      ['workflow:busy:kid', 'failed', 'CANCELLED', null],
    ]);
    const [child] = await engine.listWorkflows({ name: 'kid' });
    expect(child).toMatchObject({ status: 'failed', error: { code: 'CANCELLED' } });
    expect((await engine.getWorkflow(child!.id))!.steps.map((step) => step.status)).toEqual(['failed']);
    expect(await countRows(database, 'workflow_timers')).toBe(0);
    const events = await readRows<{ reason: string }>(database, 'select discard_reason as reason from workflow_events');
    expect(events).toEqual([{ reason: 'cancelled' }]);
  });

  it('a cancel committed by another engine aborts the step running here; its late outcome is refused', async () => {
    const database = await backend.fresh();
    const runner = await openEngine(database);
    const canceller = await openEngine(database);
    const started = deferred();
    const aborted: string[] = [];
    const machine = setup({ actors: { work: placeholder } }).createMachine({ id: 'one', initial: 'w', states: { w: { invoke: { src: 'work', onDone: 'done' } }, done: { type: 'final' } } });
    runner.workflow('one', machine, { steps: { work: stubbornStep(started, aborted) } });
    canceller.workflow('one', machine, { steps: { work: async () => 'never here' } });
    await runner.start();
    const id = await runner.startWorkflow('one', {});
    await started.promise;
    expect(await canceller.cancelWorkflow(id)).toEqual({ outcome: 'cancelled' });
    await until(() => aborted.length > 0, 10_000, 'the other engine to abort its step');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect((await runner.getWorkflow(id))!.steps[0]).toMatchObject({ status: 'failed', error: { code: 'CANCELLED' }, result: null });
  });

  it('a saga: a state that handles promised.cancel compensates, then the workflow fails with CANCELLED', async () => {
    const database = await backend.fresh();
    const engine = await openEngine(database);
    const booking = deferred();
    const aborted: string[] = [];
    const releasing = deferred<string[]>();
    engine.workflow('trip', trip, { steps: { book: stubbornStep(booking, aborted), release: (booked: string[]) => releasing.promise.then(() => booked) } });
    await engine.start();
    const id = await engine.startWorkflow('trip', {});
    await booking.promise;
    expect(await engine.cancelWorkflow(id)).toEqual({ outcome: 'compensating' });
    const compensating = await engine.getWorkflow(id);
    expect(compensating).toMatchObject({ status: 'running', value: 'compensating' });
    expect(compensating!.cancelRequestedAt).toBeInstanceOf(Date);
    await until(() => aborted.length > 0, 5_000, 'the booking step to be aborted');
    releasing.resolve(['hotel']);
    await expect(engine.workflowResult(id, { timeout: 5_000 })).rejects.toMatchObject({ error: { code: 'CANCELLED' } });
    const record = await engine.getWorkflow(id);
    expect(record).toMatchObject({ status: 'failed', value: 'released', context: { released: ['hotel'] } });
    expect(record!.error!.message).toContain('compensation reached a final state');
    expect(record!.steps.map((step) => [step.type, step.status])).toEqual([
      ['workflow:trip:book', 'failed'],
      ['workflow:trip:release', 'completed'],
    ]);
    expect(await countRows(database, 'workflow_timers')).toBe(0);
  });

  it('a compensation that does not end within compensationTimeout is stopped; a second cancel stops it at once', async () => {
    const database = await backend.fresh();
    // Its steps never end: stopping waits for them no longer than this.
    const engine = await openEngine(database, { stopTimeoutMs: 100 });
    const booking = deferred();
    const never = () => new Promise(() => undefined);
    engine.workflow('trip', trip, { steps: { book: stubbornStep(booking, []), release: never }, compensationTimeout: 300 });
    engine.workflow('trip2', trip, { steps: { book: async () => never(), release: never } });
    await engine.start();
    const id = await engine.startWorkflow('trip', {});
    await booking.promise;
    expect((await engine.cancelWorkflow(id)).outcome).toBe('compensating');
    const error = await engine.workflowResult(id, { timeout: 5_000 }).catch((thrown: PromisedError & { error: { code: string; message: string } }) => thrown.error);
    expect(error).toMatchObject({ code: 'CANCELLED' });
    expect((error as { message: string }).message).toContain('within 300 ms');
    expect((await engine.getWorkflow(id))!.steps.map((step) => [step.status, step.error?.code])).toEqual([
      ['failed', 'CANCELLED'],
      ['failed', 'CANCELLED'],
    ]);

    const second = await engine.startWorkflow('trip2', {});
    expect((await engine.cancelWorkflow(second)).outcome).toBe('compensating');
    expect((await engine.cancelWorkflow(second)).outcome).toBe('cancelled');
    expect(await engine.getWorkflow(second)).toMatchObject({ status: 'failed', value: 'compensating', error: { code: 'CANCELLED' } });
  });

  it('an unknown or finished workflow is refused before anything is written', async () => {
    const database = await backend.fresh();
    const engine = await openEngine(database);
    engine.workflow('quick', createMachine({ id: 'quick', initial: 'a', states: { a: { on: { GO: 'b' } }, b: { type: 'final' } } }), { steps: {} });
    await expectCode('INVALID_OPTION', () => engine.workflow('bad', trip, { steps: { book: async () => 1, release: async () => 1 }, compensationTimeout: -5 }));
    const id = await engine.startWorkflow('quick', {});
    await engine.send(id, { type: 'GO' });
    const before = await dumpDatabase(database);
    await expectCode('NOT_FOUND', () => engine.cancelWorkflow('123456'));
    await expectCode('NOT_FOUND', () => engine.cancelWorkflow('x'));
    await expectCode('WORKFLOW_FINISHED', () => engine.cancelWorkflow(id));
    expect(await dumpDatabase(database)).toEqual(before);
  });
});
