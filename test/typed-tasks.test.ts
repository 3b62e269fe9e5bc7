// Typed task definitions (defineTask with a Standard Schema): typed and checked enqueues, producers
// that enqueue without a handler, typed results, and ctx.parents() for a dependent. Both zod 4 and
// valibot 1 are used, as a user would bring either. Type-level expectations are checked by tsc
// (`npx tsc --noEmit -p tsconfig.json` includes test/), run-time ones by vitest.
import * as v from 'valibot';
import { afterEach, describe, expect, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import { createEngine, defineTask, InvalidPayloadError, PromisedError, type Engine, type PromiseId, type ResultOf } from '../src/index.js';
import { engineBackends } from './helpers/backends.js';
import { dumpDatabase } from './helpers/db-dump.js';
import { tempDbPath } from './helpers/temp-db.js';

const engines: Engine[] = [];
afterEach(async () => {
  for (const engine of engines.splice(0)) await engine.stop();
});

async function open(database = tempDbPath()): Promise<Engine> {
  const engine = await createEngine({ database, changeCheckIntervalMs: 10, cleanupIntervalMs: 0 });
  engines.push(engine);
  return engine;
}

// zod: a default and a transform, so the handler's payload (the schema's output) differs from what enqueue takes (its input).
const review = defineTask({
  type: 'review',
  schema: z.object({ file: z.string().min(1), lines: z.number().int().default(10) }),
  handler: async ({ file, lines }) => ({ file, lines, ok: true }),
  options: { retries: 2, priority: 7 },
});

// valibot
const summarize = defineTask({
  type: 'summarize',
  schema: v.object({ text: v.pipe(v.string(), v.maxLength(20)), at: v.pipe(v.string(), v.isoTimestamp(), v.transform((text) => new Date(text))) }),
  handler: async ({ text, at }) => ({ words: text.split(' ').length, year: at.getUTCFullYear() }),
});

async function refusal(call: () => Promise<unknown>): Promise<InvalidPayloadError> {
  const error = await call().then(
    () => undefined,
    (thrown: unknown) => thrown,
  );
  expect(error).toBeInstanceOf(InvalidPayloadError);
  return error as InvalidPayloadError;
}

describe('defineTask: types', () => {
  it('types enqueue from the schema input, the handler from its output, and result() from the handler', () => {
    expectTypeOf(review.handler!).parameter(0).toEqualTypeOf<{ file: string; lines: number }>();
    expectTypeOf<Parameters<Engine['enqueue']>>().not.toBeNever();
    expectTypeOf<ResultOf<typeof review>>().toEqualTypeOf<{ file: string; lines: number; ok: boolean }>();
    expectTypeOf<ResultOf<typeof summarize>>().toEqualTypeOf<{ words: number; year: number }>();
    const nothing = defineTask({ type: 'nothing', handler: async (_payload: { n: number }) => undefined });
    expectTypeOf<ResultOf<typeof nothing>>().toEqualTypeOf<null>();
    // A producer that does not import the handler names the result type itself.
    const schema = z.object({ file: z.string() });
    const producerSide = defineTask<typeof schema, { ok: boolean }>({ type: 'review', schema });
    expectTypeOf<ResultOf<typeof producerSide>>().toEqualTypeOf<{ ok: boolean }>();
  });

  it('refuses at compile time what the schema would refuse at run time; ids carry the result type', async () => {
    const engine = await open();
    engine.task(review).task(summarize);
    // Never called: the calls are here for tsc, which checks this file.
    const typeChecks = async () => {
      // @ts-expect-error file must be a string
      await engine.enqueue(review, { file: 1 });
      // @ts-expect-error text is required
      await engine.enqueueMany([{ task: review, payload: { file: 'a' } }, { task: summarize, payload: { at: '' } }]);
      // @ts-expect-error a node's payload is checked against its own definition
      await engine.enqueueGraph({ a: { task: review, payload: { file: 'a' } }, b: { task: summarize, payload: { file: 'a' } } });
      const id = await engine.enqueue(review, { file: 'a.ts' });
      expectTypeOf(id).toEqualTypeOf<PromiseId<{ file: string; lines: number; ok: boolean }>>();
      expectTypeOf(engine.result(id)).resolves.toEqualTypeOf<{ file: string; lines: number; ok: boolean }>();
      const at = new Date(0).toISOString();
      const [first, second, third] = await engine.enqueueMany([{ task: review, payload: { file: 'b' } }, { task: summarize, payload: { text: 'x', at } }, { type: 'review', payload: { file: 'c' } }]);
      expectTypeOf(engine.result(first)).resolves.toEqualTypeOf<ResultOf<typeof review>>();
      expectTypeOf(engine.result(second)).resolves.toEqualTypeOf<ResultOf<typeof summarize>>();
      expectTypeOf(third).toEqualTypeOf<string>();
      const graph = await engine.enqueueGraph({ r: { task: review, payload: { file: 'd' } }, s: { task: summarize, payload: { text: 'y', at }, dependsOn: ['r'] } });
      expectTypeOf(engine.result(graph.s)).resolves.toEqualTypeOf<ResultOf<typeof summarize>>();
      // A plain string id (from list(), the CLI) can be annotated with the result type.
      const fromCli: PromiseId<ResultOf<typeof review>> = third;
      expectTypeOf(engine.result(fromCli)).resolves.toEqualTypeOf<ResultOf<typeof review>>();
      // The string API is unchanged.
      expectTypeOf(engine.enqueue('review', { file: 'e' })).resolves.toEqualTypeOf<string>();
      expectTypeOf(engine.result(third)).resolves.toEqualTypeOf<unknown>();
      expectTypeOf(engine.enqueueMany([{ type: 'review' }])).resolves.toEqualTypeOf<string[]>();
      const byName = await engine.enqueueGraph({ a: { type: 'review' } });
      expectTypeOf(byName.a).toEqualTypeOf<string>();
      expectTypeOf(byName).toExtend<Record<string, string>>();
    };
    expect(typeChecks).toBeTypeOf('function');
  });
});

describe('defineTask: a worker registers it', () => {
  it('runs the handler on the schema output (zod default, valibot transform) and resolves its result', async () => {
    const engine = await open();
    engine.task(review).task(summarize);
    await engine.start();
    const id = await engine.enqueue(review, { file: 'a.ts' });
    expect(await engine.result(id, { timeout: 10_000 })).toEqual({ file: 'a.ts', lines: 10, ok: true });
    // Stored as given: the schema parses it again before the handler runs.
    expect((await engine.get(id))?.payload).toEqual({ file: 'a.ts' });
    expect(await engine.get(id)).toMatchObject({ priority: 7, maxAttempts: 3 });
    const at = new Date(Date.UTC(2031, 0, 2)).toISOString();
    const other = await engine.enqueue(summarize, { text: 'two words', at });
    expect(await engine.result(other, { timeout: 10_000 })).toEqual({ words: 2, year: 2031 });
  });

  it('needs the handler', async () => {
    const engine = await open();
    const producerSide = defineTask({ type: 'review', schema: z.object({ file: z.string() }) });
    expect(() => engine.task(producerSide)).toThrow(expect.objectContaining({ code: 'INVALID_OPTION', option: 'handler' }));
    expect(engine.taskTypes).toEqual([]);
  });

  it('refuses a bad definition where it is made', () => {
    expect(() => defineTask({ type: '', handler: async () => 1 })).toThrow(expect.objectContaining({ code: 'INVALID_OPTION', option: 'type' }));
    expect(() => defineTask({ type: 'x', schema: { parse: () => 1 } as never })).toThrow(expect.objectContaining({ code: 'INVALID_OPTION', option: 'schema' }));
    expect(() => defineTask({ type: 'x', options: { retries: -1 } })).toThrow(expect.objectContaining({ code: 'INVALID_OPTION', option: 'retries' }));
  });

  it('fails a stored payload that the schema no longer accepts at once, whatever retries are left', async () => {
    const database = tempDbPath();
    const before = await open(database);
    const loose = defineTask({ type: 'review', schema: z.object({ file: z.string() }), options: { retries: 2 } });
    const id = await before.enqueue(loose, { file: '' });
    const worker = await open(database);
    worker.task(review);
    await worker.start();
    await expect(worker.result(id, { timeout: 10_000 })).rejects.toMatchObject({ code: 'PROMISE_FAILED', error: { code: 'INVALID_PAYLOAD' } });
    expect(await worker.get(id)).toMatchObject({ status: 'failed', attempts: 1, maxAttempts: 3 });
  });
});

for (const backend of engineBackends)
  describe.skipIf(backend.skip)(`defineTask on ${backend.name}`, () => {
    it('refuses what the schema refuses, naming the issue path, before anything is written', async () => {
      const database = await backend.fresh();
      const engine = await open(database);
      engine.task(review).task(summarize);
      const before = await dumpDatabase(database);
      const one = await refusal(() => engine.enqueue(review, { file: 3 } as never));
      expect(one).toMatchObject({ code: 'INVALID_PAYLOAD', path: 'payload.file' });
      expect(one.message).toMatch(/^value at payload\.file is invalid: the schema of task "review" refused it: payload\.file: /);
      const many = await refusal(() =>
        engine.enqueueMany([
          { task: review, payload: { file: 'fine' } },
          { task: summarize, payload: { text: 'far too long for twenty characters', at: 'not a date' } },
        ]),
      );
      expect(many.path).toBe('items[1].payload.text');
      expect(many.issues.map((issue) => issue.path)).toEqual(['items[1].payload.text', 'items[1].payload.at']);
      const graph = await refusal(() => engine.enqueueGraph({ a: { task: review, payload: { file: 'x' } }, b: { task: review, payload: { file: 'y', lines: 1.5 }, dependsOn: ['a'] } }));
      expect(graph.path).toBe('graph.b.payload.lines');
      // By name, a type registered from a definition is checked by its schema too (the CLI enqueues by name).
      expect((await refusal(() => engine.enqueue('review', { file: '' }))).path).toBe('payload.file');
      // What the schema sees is what a worker will read back: JSON (a Date arrives as a string).
      const dated = defineTask({ type: 'dated', schema: z.object({ at: z.date() }), handler: async () => 1 });
      engine.task(dated);
      expect((await refusal(() => engine.enqueue(dated, { at: new Date() }))).path).toBe('payload.at');
      expect(await dumpDatabase(database)).toEqual(before);
    });

    it('a producer enqueues with the definition and no handler; the worker computes the same options', async () => {
      const database = await backend.fresh();
      const producerSide = defineTask<z.ZodType<{ file: string }>, { file: string; lines: number; ok: boolean }>({
        type: 'review',
        schema: z.object({ file: z.string().min(1) }),
        options: { retries: 2, priority: 7, onComplete: 'notify' },
      });
      const producer = await open(database);
      await expect(producer.enqueue(producerSide, { file: '' })).rejects.toMatchObject({ code: 'INVALID_PAYLOAD', path: 'payload.file' });
      const id = await producer.enqueue(producerSide, { file: 'p.ts' }, { delay: 0 });
      const [second] = await producer.enqueueMany([{ task: producerSide, payload: { file: 'q.ts' }, priority: 1 }]);
      expect(producer.taskTypes).toEqual([]);
      expect(await producer.get(id)).toMatchObject({ status: 'pending', priority: 7, maxAttempts: 3 });
      expect(await producer.get(second!)).toMatchObject({ priority: 1, maxAttempts: 3 });
      // A different definition of the same type in one producer is refused: which options would hold?
      await expect(producer.enqueue(defineTask({ type: 'review', options: { retries: 9 } }), { file: 'r.ts' })).rejects.toMatchObject({ code: 'DUPLICATE_TASK' });

      const worker = await open(database);
      const notified: string[] = [];
      worker.task(review).task('notify', async ({ promise }: { promise: { id: string } }) => void notified.push(promise.id));
      await worker.start();
      const result = await worker.result(id, { timeout: 10_000 });
      expectTypeOf(result).toEqualTypeOf<{ file: string; lines: number; ok: boolean }>();
      expect(result).toEqual({ file: 'p.ts', lines: 10, ok: true });
      expect(await worker.result(second!, { timeout: 10_000 })).toMatchObject({ file: 'q.ts' });
      // The worker's own registration (from the same definition options) enqueues with the same numbers.
      const byWorker = await worker.enqueue(review, { file: 'w.ts' });
      expect(await worker.get(byWorker)).toMatchObject({ priority: 7, maxAttempts: 3 });
    });

    it('ctx.parents() gives a dependent its parents’ results, by id', async () => {
      const database = await backend.fresh();
      const engine = await open(database);
      const seen: Array<Record<string, unknown>> = [];
      engine.task('part', async (payload: { n: number }) => (payload.n === 0 ? undefined : { n: payload.n }));
      engine.task('join', async (_payload: unknown, ctx) => {
        const parents = await ctx.parents<{ n: number } | null>();
        seen.push(parents);
        return Object.values(parents).reduce((sum, result) => sum + (result?.n ?? 0), 0);
      });
      await engine.start();
      const ids = await engine.enqueueGraph({
        a: { type: 'part', payload: { n: 1 } },
        b: { type: 'part', payload: { n: 2 } },
        c: { type: 'part', payload: { n: 0 } },
        join: { type: 'join', dependsOn: ['a', 'b', 'c'] },
        alone: { type: 'join' },
      });
      expect(await engine.result(ids.join!, { timeout: 10_000 })).toBe(3);
      expect(await engine.result(ids.alone!, { timeout: 10_000 })).toBe(0);
      expect(seen).toContainEqual({ [ids.a!]: { n: 1 }, [ids.b!]: { n: 2 }, [ids.c!]: null });
      expect(seen).toContainEqual({});
    });
  });

describe('defineTask: errors are PromisedErrors', () => {
  it('an unknown definition-like object is refused by enqueueMany', async () => {
    const engine = await open();
    await expect(engine.enqueueMany([{ task: { type: 'x' }, payload: 1 }] as never)).rejects.toMatchObject({ code: 'INVALID_OPTION', option: 'task' });
    expect(PromisedError).toBeTypeOf('function');
  });
});
