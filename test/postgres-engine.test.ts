import { afterEach, describe, expect, inject, it } from 'vitest';
import { createEngine, type Engine, type EngineOptions } from '../src/index.js';
import { expectedOutput, pipelineMachine, pipelineSteps } from './fixtures/pipeline-workflow.js';
import { createFreshDatabase } from './helpers/postgres.js';
import { deferred, until } from './helpers/wait.js';

// What only PostgreSQL has to show: several engines on one server (LISTEN/NOTIFY, races that
// READ COMMITTED allows), and its own refusals. The behaviours common to both backends run over
// both in engine.test.ts, lifecycle.test.ts and workflows.test.ts.

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

  it('an idempotency key enqueues once, also from two engines at once', async () => {
    const database = await fresh();
    const one = await open(database);
    const two = await open(database);
    for (const engine of [one, two]) engine.task('t', async () => 1);
    const ids = await Promise.all([one.enqueue('t', {}, { key: 'same' }), two.enqueue('t', {}, { key: 'same' }), one.enqueue('t', {}, { key: 'same' })]);
    expect(new Set(ids).size).toBe(1);
    expect(await one.list({ type: 't' })).toHaveLength(1);
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
