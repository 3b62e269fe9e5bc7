import { afterEach, describe, expect, inject, it } from 'vitest';
import { createEngine, type Engine, type EngineOptions } from '../src/index.js';
import { expectedOutput, pipelineMachine, pipelineSteps } from './fixtures/pipeline-workflow.js';
import { createFreshDatabase } from './helpers/postgres.js';
import { deferred, until } from './helpers/wait.js';

// The engine's behaviours, through createEngine({ database: 'postgres://…' }) on a real server.

const adminUrl = inject('postgresAdminUrl');
if (!adminUrl) console.warn(`PostgreSQL engine tests skipped: ${inject('postgresSkipReason')}`);

const engines: Engine[] = [];
afterEach(async () => {
  for (const engine of engines.splice(0)) await engine.stop();
});

async function open(database: string, options: EngineOptions = {}) {
  const engine = await createEngine({ database, stopTimeoutMs: 2_000, cleanupIntervalMs: 0, ...options });
  engines.push(engine);
  return engine;
}

describe.skipIf(!adminUrl)('engine on PostgreSQL', () => {
  const fresh = () => createFreshDatabase(adminUrl!);

  it('enqueues, runs and stores the result', async () => {
    const engine = await open(await fresh());
    engine.task('double', async (payload: { n: number }) => ({ value: payload.n * 2 }));
    await engine.start();
    const id = await engine.enqueue('double', { n: 21 });
    expect(await engine.result(id, { timeout: 5_000 })).toEqual({ value: 42 });
    expect(await engine.get(id)).toMatchObject({ id, status: 'completed', payload: { n: 21 }, result: { value: 42 }, attempts: 1, dependsOn: [] });
  });

  it('releases a dependency chain in order', async () => {
    const engine = await open(await fresh());
    const order: string[] = [];
    engine.task('step', async (payload: { name: string }) => {
      order.push(payload.name);
      return payload.name;
    });
    await engine.start();
    const ids = await engine.enqueueGraph({
      setup: { type: 'step', payload: { name: 'setup' } },
      tests: { type: 'step', payload: { name: 'tests' }, dependsOn: ['setup'] },
      run: { type: 'step', payload: { name: 'run' }, dependsOn: ['tests'] },
    });
    expect(await engine.result(ids.run!, { timeout: 5_000 })).toBe('run');
    expect(order).toEqual(['setup', 'tests', 'run']);
    expect((await engine.get(ids.run!))!.dependsOn).toEqual([ids.tests]);
  });

  it('a fan-in child waits for every parent', async () => {
    const engine = await open(await fresh(), { concurrency: 3 });
    const gates = [deferred(), deferred(), deferred()];
    engine.task('part', async (payload: { i: number }) => gates[payload.i]!.promise);
    engine.task('join', async () => 'joined');
    await engine.start();
    const parts = await engine.enqueueMany([0, 1, 2].map((i) => ({ type: 'part', payload: { i } })));
    const join = await engine.enqueue('join', {}, { dependsOn: parts });
    gates[0]!.resolve();
    gates[1]!.resolve();
    await until(async () => (await engine.stats()).completed === 2, 5_000, 'two parts completed');
    expect((await engine.get(join))!.status).toBe('waiting');
    gates[2]!.resolve();
    expect(await engine.result(join, { timeout: 5_000 })).toBe('joined');
  });

  it('a parent that fails for good fails every descendant with DEPENDENCY_FAILED', async () => {
    const engine = await open(await fresh());
    engine.task('boom', async () => {
      throw new Error('kaput');
    });
    engine.task('ok', async () => 'ok');
    await engine.start();
    const ids = await engine.enqueueGraph({
      parent: { type: 'boom' },
      child: { type: 'ok', dependsOn: ['parent'] },
      grandchild: { type: 'ok', dependsOn: ['child'] },
    });
    await expect(engine.result(ids.grandchild!, { timeout: 5_000 })).rejects.toMatchObject({ error: { code: 'DEPENDENCY_FAILED' } });
    expect(await engine.get(ids.parent!)).toMatchObject({ status: 'failed' });
    expect(await engine.get(ids.child!)).toMatchObject({ status: 'failed', error: { code: 'DEPENDENCY_FAILED' } });
  });

  it('retries until an attempt succeeds', async () => {
    const engine = await open(await fresh());
    let calls = 0;
    engine.task(
      'flaky',
      async () => {
        if (++calls < 3) throw new Error(`attempt ${calls}`);
        return 'third time';
      },
      { retries: 3, retryDelay: 5 },
    );
    await engine.start();
    const id = await engine.enqueue('flaky', {});
    expect(await engine.result(id, { timeout: 5_000 })).toBe('third time');
    expect(await engine.get(id)).toMatchObject({ attempts: 3, status: 'completed' });
  });

  it('cancels a running promise: its signal aborts and its dependents fail', async () => {
    const engine = await open(await fresh());
    const started = deferred();
    let reason: unknown;
    engine.task('long', (_payload, ctx) => {
      started.resolve();
      return new Promise((resolve) => ctx.signal.addEventListener('abort', () => resolve((reason = ctx.signal.reason))));
    });
    engine.task('after', async () => 'never');
    await engine.start();
    const ids = await engine.enqueueGraph({ long: { type: 'long' }, after: { type: 'after', dependsOn: ['long'] } });
    await started.promise;
    await engine.cancel(ids.long!);
    await expect(engine.result(ids.long!)).rejects.toMatchObject({ error: { code: 'CANCELLED' } });
    expect(reason).toMatchObject({ code: 'CANCELLED' });
    expect((await engine.get(ids.after!))!.error?.code).toBe('DEPENDENCY_FAILED');
  });

  it('a cancel from another engine reaches the running handler (LISTEN/NOTIFY)', async () => {
    const database = await fresh();
    const worker = await open(database);
    const started = deferred();
    let reason: unknown;
    worker.task('long', (_payload, ctx) => {
      started.resolve();
      return new Promise((resolve) => ctx.signal.addEventListener('abort', () => resolve((reason = ctx.signal.reason))));
    });
    await worker.start();
    const id = await worker.enqueue('long', {});
    await started.promise;
    const other = await open(database);
    await other.cancel(id);
    await until(() => reason !== undefined, 5_000, 'the abort to reach the handler');
    expect(reason).toMatchObject({ code: 'CANCELLED' });
  });

  it('an idempotency key enqueues once, also from two engines at once', async () => {
    const database = await fresh();
    const one = await open(database);
    const two = await open(database);
    for (const engine of [one, two]) engine.task('t', async () => 1);
    const ids = await Promise.all([one.enqueue('t', {}, { key: 'same' }), two.enqueue('t', {}, { key: 'same' }), one.enqueue('t', {}, { key: 'same' })]);
    expect(new Set(ids).size).toBe(1);
    expect(await one.list({ type: 't' })).toHaveLength(1);
  });

  it('result() sees a promise finished by another engine', async () => {
    const database = await fresh();
    const waiter = await open(database);
    waiter.task('t', async () => 'from the other one');
    const id = await waiter.enqueue('t', {});
    const result = waiter.result(id, { timeout: 5_000 });
    const worker = await open(database);
    worker.task('t', async () => 'from the other one');
    await worker.start();
    expect(await result).toBe('from the other one');
  });

  it('work enqueued by another engine starts at once, without polling', async () => {
    const database = await fresh();
    const worker = await open(database);
    const ran = deferred<number>();
    worker.task('t', async () => ran.resolve(Date.now()));
    await worker.start();
    const producer = await open(database);
    producer.task('t', async () => undefined);
    // Let the worker go idle (its due timer unarmed), then enqueue from elsewhere.
    await new Promise((resolve) => setTimeout(resolve, 100));
    const enqueuedAt = Date.now();
    await producer.enqueue('t', {});
    const latency = (await ran.promise) - enqueuedAt;
    expect(latency).toBeLessThan(1_000);
  });

  it('runs a workflow to completion', async () => {
    const engine = await open(await fresh());
    const calls: string[] = [];
    engine.workflow('pipeline', pipelineMachine(50), { steps: pipelineSteps((step) => void calls.push(step)) });
    await engine.start();
    const id = await engine.startWorkflow('pipeline', { repo: 'auth' });
    await until(async () => (await engine.getWorkflow(id))!.value === 'approval', 5_000, 'approval');
    await engine.send(id, { type: 'APPROVE', by: 'ada' });
    expect(await engine.workflowResult(id, { timeout: 5_000 })).toEqual(expectedOutput('auth', 'ada'));
    expect(calls.sort()).toEqual(['review', 'runTests', 'setupEnv', 'ship', 'writeTests']);
    expect(await engine.getWorkflow(id)).toMatchObject({ status: 'completed', value: 'shipped' });
  });

  it('two engines create each periodic run once', async () => {
    const database = await fresh();
    const ticks: string[] = [];
    const first = await open(database);
    const second = await open(database);
    for (const engine of [first, second]) engine.periodic('tick', '* * * * * *', (ctx) => void ticks.push(ctx.scheduledAt.toISOString()));
    await Promise.all([first.start(), second.start()]);
    await until(() => ticks.length >= 3, 10_000, 'three ticks');
    await Promise.all(engines.splice(0).map((engine) => engine.stop()));
    const check = await open(database);
    const runs = await check.list({ type: 'periodic:tick', limit: 100 });
    expect(new Set(runs.map((run) => JSON.stringify(run.payload))).size).toBe(runs.length);
    expect(new Set(ticks).size).toBe(ticks.length);
  });

  it('refuses a database that is not ours, and an unreachable server, with typed codes', async () => {
    const database = await fresh();
    const { default: pg } = await import('pg');
    const client = new pg.Client({ connectionString: database });
    await client.connect();
    await client.query('create table invoices (id int)');
    await client.end();
    await expect(createEngine({ database })).rejects.toMatchObject({ code: 'DATABASE_NOT_PROMISED' });
    await expect(createEngine({ database: 'postgres://postgres@127.0.0.1:1/none' })).rejects.toMatchObject({ code: 'DATABASE_UNAVAILABLE' });
  });

  it('refuses a database migrated by a newer promised', async () => {
    const database = await fresh();
    await (await open(database)).stop();
    engines.pop();
    const { default: pg } = await import('pg');
    const client = new pg.Client({ connectionString: database });
    await client.connect();
    await client.query(`insert into promised_migration (name, timestamp) values ('9999_future', now()::text)`);
    await client.end();
    await expect(createEngine({ database })).rejects.toMatchObject({ code: 'DATABASE_SCHEMA_TOO_NEW' });
  });
});
