import BetterSqlite3 from 'better-sqlite3';
import pg from 'pg';
import { assign, createActor, createMachine, fromPromise, setup, type AnyStateMachine } from 'xstate';
import { afterEach, describe, expect, it } from 'vitest';
import { createEngine, PromisedError, type Engine, type EngineOptions } from '../src/index.js';
import { engineBackends } from './helpers/backends.js';
import { dumpDb } from './helpers/db-dump.js';
import { deferred, until } from './helpers/wait.js';
import { expectedOutput, naive, pipelineMachine, pipelineSteps } from './fixtures/pipeline-workflow.js';

const engines: Engine[] = [];
afterEach(async () => {
  for (const engine of engines.splice(0)) await engine.stop();
});

async function open(file: string, options: EngineOptions = {}) {
  const engine = await createEngine({ database: file, changeCheckIntervalMs: 10, cleanupIntervalMs: 0, ...options });
  engines.push(engine);
  return engine;
}

async function stop(engine: Engine) {
  engines.splice(engines.indexOf(engine), 1);
  await engine.stop();
}

const isPostgres = (database: string) => /^postgres(ql)?:\/\//.test(database);

/** Rows read straight from the database (not through the engine): what is on disk. */
async function readRows<T>(database: string, query: string, params: unknown[] = []): Promise<T[]> {
  if (!isPostgres(database)) {
    const db = new BetterSqlite3(database, { readonly: true, fileMustExist: true });
    try {
      return db.prepare(query.replace(/\$\d+/g, '?')).all(...params) as T[];
    } finally {
      db.close();
    }
  }
  const client = new pg.Client({ connectionString: database });
  await client.connect();
  try {
    return (await client.query(query, params)).rows as T[];
  } finally {
    await client.end();
  }
}

/** Every row of every table, to prove a refused call changed nothing. */
async function dump(database: string): Promise<unknown> {
  if (!isPostgres(database)) return dumpDb(database);
  const tables = await readRows<{ name: string }>(database, `select table_name as name from information_schema.tables where table_schema = current_schema() and table_type = 'BASE TABLE' order by table_name`);
  const all: Record<string, unknown> = {};
  for (const { name } of tables) all[name] = (await readRows<unknown>(database, `select * from "${name}"`)).map((row) => JSON.stringify(row)).sort();
  return all;
}

async function storedSnapshot(database: string, id: string) {
  const [row] = await readRows<{ snapshot: string }>(database, 'select snapshot from workflows where id = $1', [Number(id)]);
  return JSON.parse(row!.snapshot) as { value: unknown; children?: Record<string, { src: unknown; snapshot: { value?: unknown; status?: string } }> };
}

async function expectCode(code: string, call: () => unknown) {
  const error = await Promise.resolve()
    .then(call)
    .then(
      () => undefined,
      (thrown: unknown) => thrown,
    );
  expect(error, `expected ${code}`).toBeInstanceOf(PromisedError);
  expect((error as PromisedError).code).toBe(code);
}

for (const backend of engineBackends) describe.skipIf(backend.skip)(`workflows on ${backend.name}`, () => {
describe('workflows', () => {
  it('runs steps, a parallel state, a durable delay and an external event to its output', async () => {
    const engine = await open(await backend.fresh());
    const calls: string[] = [];
    const changes: string[] = [];
    engine.on('workflow', (change) => changes.push(`${change.event} -> ${JSON.stringify(change.value)}`));
    engine.workflow('pipeline', pipelineMachine(100), { steps: pipelineSteps((step) => void calls.push(step)) });
    await engine.start();
    const id = await engine.startWorkflow('pipeline', { repo: 'auth' });
    const first = await engine.getWorkflow(id);
    expect(first).toMatchObject({ status: 'running', value: { build: { code: 'setup', review: 'reviewing' } } });
    expect(first!.steps.map((s) => s.type).sort()).toEqual(['workflow:pipeline:review', 'workflow:pipeline:setupEnv']);
    await until(async () => (await engine.getWorkflow(id))!.value === 'approval', 5_000, 'approval');
    await engine.send(id, { type: 'APPROVE', by: 'ada' });
    expect(await engine.workflowResult(id, { timeout: 5_000 })).toEqual(expectedOutput('auth', 'ada'));
    expect(calls.sort()).toEqual(['review', 'runTests', 'setupEnv', 'ship', 'writeTests']);
    await until(() => changes.length >= 8, 2_000, 'workflow events: ' + JSON.stringify(changes));
    expect(changes[0]).toBe('xstate.init -> {"build":{"code":"setup","review":"reviewing"}}');
    expect(changes).toContain('xstate.after.100.pipeline.cooldown -> "approval"');
    expect(changes).toContain('APPROVE -> "shipping"');
    expect(changes.at(-1)).toMatch(/^xstate.done.actor.* -> "shipped"$/);
    const done = await engine.getWorkflow(id);
    expect(done).toMatchObject({ status: 'completed', value: 'shipped', output: expectedOutput('auth', 'ada') });
    expect(done!.steps.every((s) => s.status === 'completed')).toBe(true);
  });

  it('an event sent just before the workflow starts waiting for it is not missed', async () => {
    const file = await backend.fresh();
    const engine = await open(file);
    engine.workflow('pipeline', pipelineMachine(100), { steps: pipelineSteps() });
    const id = await engine.startWorkflow('pipeline', { repo: 'early' });
    // Still building (the engine is not even started): no state handles APPROVE yet.
    await engine.send(id, { type: 'APPROVE', by: 'early-bird' });
    await engine.send(id, { type: 'UNKNOWN_EVENT' });
    expect((await engine.getWorkflow(id))!.value).toEqual({ build: { code: 'setup', review: 'reviewing' } });
    await engine.start();
    expect(await engine.workflowResult(id, { timeout: 5_000 })).toEqual(expectedOutput('early', 'early-bird'));
    // The event nobody handles is kept, visibly, not applied.
    const events = await readRows<{ event: string; applied_at: number | null }>(file, 'select event, applied_at from workflow_events order by id');
    expect(events.map((e) => [JSON.parse(e.event).type, e.applied_at !== null])).toEqual([
      ['APPROVE', true],
      ['UNKNOWN_EVENT', false],
    ]);
  });

  it('persists a move of one parallel region while the other is still running (the root does not have to move)', async () => {
    const file = await backend.fresh();
    const engine = await open(file);
    const review = deferred<void>();
    engine.workflow('pipeline', pipelineMachine(100), {
      steps: pipelineSteps(async (step) => {
        if (step === 'review') await review.promise;
      }),
    });
    await engine.start();
    const id = await engine.startWorkflow('pipeline', { repo: 'r' });
    await until(async () => JSON.stringify((await engine.getWorkflow(id))!.value) === JSON.stringify({ build: { code: 'done', review: 'reviewing' } }), 5_000, 'code region done');
    const stored = await storedSnapshot(file, id);
    expect(stored.value).toEqual({ build: { code: 'done', review: 'reviewing' } });
    review.resolve();
  });

  it('never runs the machine’s own actor implementations, before or after a restart', async () => {
    const file = await backend.fresh();
    naive.runs = 0;
    const first = await open(file);
    first.workflow('pipeline', pipelineMachine(50), { steps: pipelineSteps() });
    const id = await first.startWorkflow('pipeline', { repo: 'x' });
    await stop(first);
    // The naive restore: an actor from the stored snapshot runs the in-flight steps in memory.
    const stored = await storedSnapshot(file, id);
    const actor = createActor(pipelineMachine(50) as AnyStateMachine, { snapshot: stored as never });
    actor.start();
    await until(() => naive.runs > 0, 2_000, 'the naive restore to run a step');
    actor.stop();
    naive.runs = 0;

    const counts: Record<string, number> = {};
    const second = await open(file);
    second.workflow('pipeline', pipelineMachine(50), { steps: pipelineSteps((step) => void (counts[step] = (counts[step] ?? 0) + 1)) });
    await second.start();
    await until(async () => (await second.getWorkflow(id))!.value === 'approval', 5_000, 'approval');
    await second.send(id, { type: 'APPROVE', by: 'bo' });
    expect(await second.workflowResult(id, { timeout: 5_000 })).toEqual(expectedOutput('x', 'bo'));
    expect(naive.runs).toBe(0);
    expect(counts).toEqual({ setupEnv: 1, writeTests: 1, runTests: 1, review: 1, ship: 1 });
  });

  it('keeps an after-delay across a restart and fires it at its time, not before', async () => {
    const file = await backend.fresh();
    const first = await open(file);
    first.workflow('pipeline', pipelineMachine(600), { steps: pipelineSteps() });
    await first.start();
    const id = await first.startWorkflow('pipeline', { repo: 'd' });
    await until(async () => (await first.getWorkflow(id))!.value === 'cooldown', 5_000, 'cooldown');
    await stop(first);
    const enteredAt = (await readRows<{ updated_at: number }>(file, 'select updated_at from workflows'))[0]!.updated_at;
    const timers = await readRows<{ fire_at: number }>(file, 'select fire_at from workflow_timers');
    expect(timers.map((t) => Number(t.fire_at) - Number(enteredAt))).toEqual([600]);

    const second = await open(file);
    second.workflow('pipeline', pipelineMachine(600), { steps: pipelineSteps() });
    await second.start();
    expect((await second.getWorkflow(id))!.value).toBe('cooldown');
    await until(async () => (await second.getWorkflow(id))!.value === 'approval', 5_000, 'the delay to fire after the restart');
    const firedAt = (await readRows<{ updated_at: number }>(file, 'select updated_at from workflows'))[0]!.updated_at;
    expect(Number(firedAt) - Number(enteredAt)).toBeGreaterThanOrEqual(600);
    expect(await readRows(file, 'select * from workflow_timers')).toEqual([]);
  });

  it('a failing step reaches the machine as an error event; without onError the workflow fails', async () => {
    const machine = setup({ actors: { flaky: fromPromise(async () => 1), broken: fromPromise(async () => 1) } }).createMachine({
      id: 'errors',
      initial: 'first',
      context: { caught: null as unknown },
      states: {
        first: { invoke: { src: 'flaky', onDone: 'second', onError: { target: 'second', actions: assign({ caught: ({ event }) => event.error }) } } },
        second: { invoke: { src: 'broken', onDone: 'done' } },
        done: { type: 'final' },
      },
    });
    const engine = await open(await backend.fresh());
    engine.workflow('errors', machine, {
      steps: {
        flaky: async () => {
          throw new PromisedError('FLAKY', 'first step failed');
        },
        broken: async () => {
          throw new Error('second step failed');
        },
      },
      stepOptions: { retries: 1, retryDelay: 1 },
    });
    await engine.start();
    const id = await engine.startWorkflow('errors', {});
    await expect(engine.workflowResult(id, { timeout: 5_000 })).rejects.toMatchObject({ code: 'PROMISE_FAILED', error: { code: 'WORKFLOW_ERROR' } });
    const record = await engine.getWorkflow(id);
    expect(record).toMatchObject({ status: 'failed', context: { caught: { code: 'FLAKY', message: 'first step failed' } } });
    expect(record!.steps.map((s) => s.attempts)).toEqual([2, 2]);
  });

  it('runs a child workflow as a step', async () => {
    const child = setup({ actors: { double: fromPromise(async () => 0) } }).createMachine({
      id: 'child',
      initial: 'work',
      context: ({ input }: { input: { n: number } }) => ({ n: input.n }),
      states: { work: { invoke: { src: 'double', input: ({ context }) => context, onDone: { target: 'done', actions: assign({ n: ({ event }) => event.output as number }) } } }, done: { type: 'final' } },
      output: ({ context }) => context.n,
    });
    const parent = setup({ actors: { runChild: fromPromise(async () => 0) } }).createMachine({
      id: 'parent',
      initial: 'delegating',
      context: { result: 0 },
      states: { delegating: { invoke: { src: 'runChild', input: { n: 21 }, onDone: { target: 'done', actions: assign({ result: ({ event }) => event.output as number }) } } }, done: { type: 'final' } },
      output: ({ context }) => context.result,
    });
    const engine = await open(await backend.fresh());
    engine.workflow('child', child, { steps: { double: async (input: { n: number }) => input.n * 2 } });
    engine.workflow('parent', parent, { steps: { runChild: { workflow: 'child' } } });
    await engine.start();
    const id = await engine.startWorkflow('parent', {});
    expect(await engine.workflowResult(id, { timeout: 5_000 })).toBe(42);
  });

  it('a stored snapshot whose state was removed fails with WORKFLOW_VERSION_MISMATCH and is kept intact', async () => {
    const file = await backend.fresh();
    const first = await open(file);
    first.workflow('pipeline', pipelineMachine(10_000), { steps: pipelineSteps() });
    await first.start();
    const id = await first.startWorkflow('pipeline', { repo: 'v' });
    await until(async () => (await first.getWorkflow(id))!.value === 'cooldown', 5_000, 'cooldown');
    await stop(first);
    const before = (await readRows<{ snapshot: string }>(file, 'select snapshot from workflows'))[0]!.snapshot;

    // Version 2 of the machine has no "cooldown" state any more.
    const v2 = setup({ actors: { ship: fromPromise(async () => 1) } }).createMachine({
      id: 'pipeline',
      initial: 'approval',
      states: { approval: { on: { APPROVE: 'shipping' } }, shipping: { invoke: { src: 'ship', onDone: 'shipped' } }, shipped: { type: 'final' } },
    });
    const second = await open(file);
    second.workflow('pipeline', v2, { steps: { ship: async () => 'shipped' } });
    const summary = await second.start();
    expect(summary.workflows).toEqual({ running: 1, versionMismatches: 1 });
    const record = await second.getWorkflow(id);
    expect(record).toMatchObject({ status: 'failed', error: { code: 'WORKFLOW_VERSION_MISMATCH' } });
    expect(record!.error!.message).toContain('cooldown');
    expect((await readRows<{ snapshot: string }>(file, 'select snapshot from workflows'))[0]!.snapshot).toBe(before);
  });
});

describe('workflow bad input is refused before anything is written', () => {
  const machine = () => pipelineMachine(10);

  it('unknown workflow, unknown or finished target of send', async () => {
    const file = await backend.fresh();
    const engine = await open(file, { immediate: true });
    engine.workflow('pipeline', machine(), { steps: pipelineSteps() });
    const before = await dump(file);
    await expectCode('UNKNOWN_WORKFLOW', () => engine.startWorkflow('nope', {}));
    await expectCode('NOT_FOUND', () => engine.send('999', { type: 'APPROVE' }));
    await expectCode('NOT_FOUND', () => engine.workflowResult('12345'));
    expect(await dump(file)).toEqual(before);
  });

  it('steps that do not match the machine, and inline actors', async () => {
    const engine = await open(await backend.fresh());
    const { ship: _ship, ...missing } = pipelineSteps();
    await expectCode('WORKFLOW_STEP_MISMATCH', () => engine.workflow('a', machine(), { steps: missing }));
    await expectCode('WORKFLOW_STEP_MISMATCH', () => engine.workflow('b', machine(), { steps: { ...pipelineSteps(), extra: async () => 1 } }));
    const inline = createMachine({ id: 'inline', initial: 'x', states: { x: { invoke: { src: fromPromise(async () => 1) } } } });
    await expectCode('WORKFLOW_STEP_MISMATCH', () => engine.workflow('c', inline, { steps: {} }));
    expect(engine.taskTypes).toEqual([]);
  });

  it('a non-serialisable input, event or context; a send to a finished workflow', async () => {
    const file = await backend.fresh();
    const m = setup({ types: { context: {} as { bag: unknown } } }).createMachine({
      id: 'bag',
      initial: 'open',
      context: { bag: null },
      states: {
        open: { on: { STUFF: { actions: assign({ bag: () => new Map([[1, 2]]) }) }, CLOSE: 'closed' } },
        closed: { type: 'final' },
      },
    });
    const engine = await open(file);
    engine.workflow('bag', m, { steps: {} });
    await expectCode('INVALID_PAYLOAD', () => engine.startWorkflow('bag', { n: 1n }));
    const id = await engine.startWorkflow('bag', {});
    const before = await dump(file);
    await expectCode('INVALID_PAYLOAD', () => engine.send(id, { type: 'STUFF', when: () => 1 } as never));
    await expectCode('INVALID_PAYLOAD', () => engine.send(id, { type: 'STUFF' }));
    await expectCode('INVALID_OPTION', () => engine.send(id, { nope: true } as never));
    expect(await dump(file)).toEqual(before);
    await engine.send(id, { type: 'CLOSE' });
    const closed = await dump(file);
    await expectCode('WORKFLOW_FINISHED', () => engine.send(id, { type: 'CLOSE' }));
    expect(await dump(file)).toEqual(closed);
  });
});
});
