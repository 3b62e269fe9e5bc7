import fs from 'node:fs';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import pg from 'pg';
import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { fromPromise, setup } from 'xstate';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createEngine, NonRetryableError, type Engine } from '../src/index.js';
import { engineBackends, executeSql } from './helpers/backends.js';
import { spawnFixture } from './helpers/child.js';
import { tempDir } from './helpers/temp-db.js';
import { registerInMemoryTracing, type SpanRecord } from './helpers/tracing.js';
import { deferred, until } from './helpers/wait.js';

const engines: Engine[] = [];
afterEach(async () => {
  for (const engine of engines.splice(0)) await engine.stop();
});

async function open(database: string): Promise<Engine> {
  const engine = await createEngine({ database, changeCheckIntervalMs: 10, cleanupIntervalMs: 0 });
  engines.push(engine);
  return engine;
}

/** The trace_context column of every promise, by id, read straight from the database. */
async function storedContexts(database: string): Promise<Map<string, string | null>> {
  const query = 'select id, trace_context from promises order by id';
  let rows: Array<{ id: number | string; trace_context: string | null }>;
  if (/^postgres(ql)?:\/\//.test(database)) {
    const client = new pg.Client({ connectionString: database });
    await client.connect();
    rows = (await client.query(query)).rows;
    await client.end();
  } else {
    const db = new BetterSqlite3(database, { readonly: true });
    rows = db.prepare(query).all() as typeof rows;
    db.close();
  }
  return new Map(rows.map((row) => [String(row.id), row.trace_context]));
}

/** Runs `work` inside a root span of the test's own tracer (a request in the user's code). */
function inSpan<T>(name: string, work: () => Promise<T>): Promise<T> {
  return trace.getTracer('test').startActiveSpan(name, async (span) => {
    try {
      return await work();
    } finally {
      span.end();
    }
  });
}

/** The one span matching; fails with the names of all spans when there is not exactly one. */
function only(spans: SpanRecord[], name: string, attributes: Record<string, unknown> = {}): SpanRecord {
  const found = spans.filter((span) => span.name === name && Object.entries(attributes).every(([key, value]) => span.attributes[key] === value));
  expect(found, `one span "${name}" ${JSON.stringify(attributes)} among ${spans.map((span) => span.name).join(', ')}`).toHaveLength(1);
  return found[0]!;
}

/** A release: built by a step, cooled by a durable timer, approved by an event, shipped by a step. */
const releaseMachine = setup({
  actors: { build: fromPromise<string>(async () => ''), ship: fromPromise<string>(async () => '') },
}).createMachine({
  id: 'release',
  initial: 'building',
  states: {
    building: { invoke: { src: 'build', onDone: 'cooling' } },
    cooling: { after: { 20: 'approval' } },
    approval: { on: { APPROVE: 'shipping' } },
    shipping: { invoke: { src: 'ship', onDone: 'shipped' } },
    shipped: { type: 'final' },
  },
});

for (const backend of engineBackends) {
  describe.skipIf(backend.skip)(`tracing on ${backend.name}`, () => {
    describe('without a tracer provider', () => {
      it('stores no trace context and runs as before', async () => {
        const database = await backend.fresh();
        const engine = await open(database);
        engine.task('plain', async () => 'done');
        await engine.start();
        const id = await inSpan('request', () => engine.enqueue('plain', {}));
        expect(await engine.result(id, { timeout: 10_000 })).toBe('done');
        expect((await storedContexts(database)).get(id)).toBeNull();
      });
    });

    describe('with an SDK registered', () => {
      let tracing: ReturnType<typeof registerInMemoryTracing>;
      beforeAll(() => void (tracing = registerInMemoryTracing()));
      beforeEach(() => tracing.reset());
      afterAll(() => tracing.shutdown());

      it('one trace from the enqueue through the attempt to the follow-up it enqueues, with the row keeping the enqueue span', async () => {
        const database = await backend.fresh();
        const engine = await open(database);
        engine.task('order', async (payload: { item: string }) => engine.enqueue('invoice', { item: payload.item }));
        engine.task('invoice', async () => 'sent');
        await engine.start();
        const id = await inSpan('request', () => engine.enqueue('order', { item: 'book' }));
        const invoiceId = (await engine.result(id, { timeout: 10_000 })) as string;
        await engine.result(invoiceId, { timeout: 10_000 });
        await engine.idle();

        const spans = tracing.spans();
        const request = only(spans, 'request');
        const enqueue = only(spans, 'enqueue order');
        const attempt = only(spans, 'process order');
        const followUp = only(spans, 'enqueue invoice');
        const followUpAttempt = only(spans, 'process invoice');
        for (const span of [enqueue, attempt, followUp, followUpAttempt]) expect(span.traceId).toBe(request.traceId);
        expect(enqueue.parentSpanId).toBe(request.spanId);
        expect(attempt.parentSpanId).toBe(enqueue.spanId);
        expect(followUp.parentSpanId).toBe(attempt.spanId);
        expect(followUpAttempt.parentSpanId).toBe(followUp.spanId);
        expect(enqueue.kind).toBe(SpanKind.PRODUCER);
        expect(attempt.kind).toBe(SpanKind.CONSUMER);
        expect(enqueue.attributes).toMatchObject({ 'promised.type': 'order', 'promised.promise.id': id, 'messaging.destination.name': 'order', 'promised.deduplicated': false });
        expect(attempt.attributes).toMatchObject({ 'promised.type': 'order', 'promised.promise.id': id, 'promised.attempt': 1, 'promised.outcome': 'succeeded' });
        expect(attempt.status).toBe(SpanStatusCode.UNSET);

        // The row keeps the enqueue span's context, in W3C form.
        const stored = JSON.parse((await storedContexts(database)).get(id)!) as { traceparent: string };
        expect(stored.traceparent).toBe(`00-${request.traceId}-${enqueue.spanId}-01`);
      });

      it('each failed attempt is an error span with the exception recorded, both children of the one enqueue', async () => {
        const engine = await open(await backend.fresh());
        let runs = 0;
        engine.task(
          'charge',
          async () => {
            runs++;
            if (runs === 1) throw new Error('card reader offline');
            throw new NonRetryableError('CARD_DECLINED', 'the card was declined');
          },
          { retries: 3, retryDelay: 0 },
        );
        await engine.start();
        const id = await inSpan('request', () => engine.enqueue('charge', {}));
        await expect(engine.result(id, { timeout: 10_000 })).rejects.toMatchObject({ code: 'PROMISE_FAILED' });
        await engine.idle();

        const spans = tracing.spans();
        const enqueue = only(spans, 'enqueue charge');
        const first = only(spans, 'process charge', { 'promised.attempt': 1 });
        const second = only(spans, 'process charge', { 'promised.attempt': 2 });
        for (const attempt of [first, second]) {
          expect(attempt.parentSpanId).toBe(enqueue.spanId);
          expect(attempt.status).toBe(SpanStatusCode.ERROR);
          expect(attempt.attributes['promised.outcome']).toBe('failed');
          expect(attempt.events.map((event) => event.name)).toEqual(['exception']);
        }
        expect(first.events[0]!.attributes['exception.message']).toBe('card reader offline');
        expect(second.attributes['promised.error.code']).toBe('CARD_DECLINED');
        expect(second.statusMessage).toBe('CARD_DECLINED: the card was declined');
      });

      it('an attempt whose claim is cancelled while it runs ends as abandoned', async () => {
        const engine = await open(await backend.fresh());
        const started = deferred();
        engine.task('slow', async (_payload, ctx) => {
          started.resolve();
          await new Promise((_resolve, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason as Error), { once: true }));
        });
        await engine.start();
        const id = await inSpan('request', () => engine.enqueue('slow', {}));
        await started.promise;
        await engine.cancel(id);
        await engine.idle();
        const attempt = only(tracing.spans(), 'process slow');
        expect(attempt.attributes).toMatchObject({ 'promised.outcome': 'abandoned', 'promised.error.code': 'CANCELLED' });
      });

      it('a damaged stored context costs the link to the producer, never the promise', async () => {
        const database = await backend.fresh();
        const engine = await open(database);
        engine.task('resilient', async () => 'ran');
        const id = await inSpan('request', () => engine.enqueue('resilient', {}));
        await executeSql(database, `update promises set trace_context = '{"traceparent": 42' where id = ${Number(id)}`);
        await engine.start();
        expect(await engine.result(id, { timeout: 10_000 })).toBe('ran');
        await engine.idle();
        const attempt = only(tracing.spans(), 'process resilient');
        expect(attempt.parentSpanId).toBeNull();
        expect(attempt.traceId).not.toBe(only(tracing.spans(), 'request').traceId);
      });

      it('a timer armed while a span was active does not make it the parent: each cron run is a trace of its own', async () => {
        const engine = await open(await backend.fresh());
        engine.periodic('tick', '* * * * * *', async () => 'ticked');
        await inSpan('boot', () => engine.start());
        await until(() => tracing.spans().some((span) => span.name === 'process periodic:tick'), 5_000, 'a cron run');
        const spans = tracing.spans();
        const boot = only(spans, 'boot');
        const enqueue = spans.find((span) => span.name === 'enqueue periodic:tick')!;
        expect(enqueue.parentSpanId).toBeNull();
        expect(enqueue.traceId).not.toBe(boot.traceId);
        expect(spans.find((span) => span.name === 'process periodic:tick')!.parentSpanId).toBe(enqueue.spanId);
      });

      it("a workflow's transitions and steps stay in the trace it started in, whatever moves it", async () => {
        const engine = await open(await backend.fresh());
        engine.workflow('release', releaseMachine, { steps: { build: async () => 'built', ship: async () => 'shipped' } });
        await engine.start();
        const id = await inSpan('request', () => engine.startWorkflow('release', {}));
        await until(async () => (await engine.getWorkflow(id))!.value === 'approval', 10_000, 'the approval state');
        // Approved from another trace (an operator's request): the workflow's trace goes on, linked to it.
        await inSpan('approver', () => engine.send(id, { type: 'APPROVE' }));
        await engine.workflowResult(id, { timeout: 10_000 });
        await engine.idle();

        const spans = tracing.spans();
        const request = only(spans, 'request');
        const approver = only(spans, 'approver');
        const transition = (event: RegExp) => {
          const found = spans.filter((span) => span.name === 'transition release' && event.test(String(span.attributes['promised.workflow.event'])));
          expect(found, `one transition on ${event}`).toHaveLength(1);
          return found[0]!;
        };
        const start = transition(/^xstate\.init$/);
        const built = transition(/^xstate\.done\.actor\..*building$/);
        const cooled = transition(/^xstate\.after\./);
        const approved = transition(/^APPROVE$/);
        const shipped = transition(/^xstate\.done\.actor\..*shipping$/);
        const buildEnqueue = only(spans, 'enqueue workflow:release:build');
        const buildAttempt = only(spans, 'process workflow:release:build');
        const shipEnqueue = only(spans, 'enqueue workflow:release:ship');
        const shipAttempt = only(spans, 'process workflow:release:ship');

        for (const span of [start, built, cooled, approved, shipped, buildEnqueue, buildAttempt, shipEnqueue, shipAttempt]) expect(span.traceId).toBe(request.traceId);
        expect(start.parentSpanId).toBe(request.spanId);
        expect(start.attributes).toMatchObject({ 'promised.workflow.id': id, 'promised.workflow.seq': 1, 'promised.workflow.to': '"building"' });
        expect(buildEnqueue.parentSpanId).toBe(start.spanId);
        expect(buildAttempt.parentSpanId).toBe(buildEnqueue.spanId);
        expect(buildAttempt.attributes).toMatchObject({ 'promised.workflow.id': id });
        // A step's outcome moves the workflow inside that step's attempt.
        expect(built.parentSpanId).toBe(buildAttempt.spanId);
        expect(built.attributes).toMatchObject({ 'promised.workflow.from': '"building"', 'promised.workflow.to': '"cooling"' });
        // A durable timer and an event from another trace continue the stored start context.
        expect(cooled.parentSpanId).toBe(start.spanId);
        expect(approved.parentSpanId).toBe(start.spanId);
        expect(approved.links).toEqual([approver.spanId]);
        expect(shipEnqueue.parentSpanId).toBe(approved.spanId);
        expect(shipAttempt.parentSpanId).toBe(shipEnqueue.spanId);
        expect(shipped.parentSpanId).toBe(shipAttempt.spanId);
        expect(shipped.attributes).toMatchObject({ 'promised.workflow.status': 'completed', 'promised.workflow.to': '"shipped"' });
      });
    });

    it('across two processes: the worker continues the trace of the producer that enqueued and exited', async () => {
      const database = await backend.fresh();
      const dir = tempDir();
      const producerSpans = path.join(dir, 'producer.json');
      const workerSpans = path.join(dir, 'worker.json');

      const producer = spawnFixture('tracing-process.ts', ['producer', database, producerSpans]);
      expect(await producer.exited, producer.stderr()).toBe(0);
      const id = producer.lines.find((line) => line.startsWith('enqueued '))!.slice('enqueued '.length);
      const worker = spawnFixture('tracing-process.ts', ['worker', database, workerSpans, id]);
      expect(await worker.exited, worker.stderr()).toBe(0);

      const produced = JSON.parse(fs.readFileSync(producerSpans, 'utf8')) as SpanRecord[];
      const worked = JSON.parse(fs.readFileSync(workerSpans, 'utf8')) as SpanRecord[];
      const request = only(produced, 'request');
      const enqueue = only(produced, 'enqueue deliver');
      expect(enqueue.parentSpanId).toBe(request.spanId);
      const attempt = only(worked, 'process deliver');
      expect(attempt.traceId).toBe(request.traceId);
      expect(attempt.parentSpanId).toBe(enqueue.spanId);
      expect(attempt.attributes).toMatchObject({ 'promised.promise.id': id, 'promised.attempt': 1, 'promised.outcome': 'succeeded' });
      const receipt = only(worked, 'enqueue receipt');
      expect(receipt.traceId).toBe(request.traceId);
      expect(receipt.parentSpanId).toBe(attempt.spanId);
      expect(only(worked, 'process receipt').parentSpanId).toBe(receipt.spanId);
    });
  });
}
