import { afterEach, describe, expect, it } from 'vitest';
import { createEngine, NonRetryableError, type Engine, type TaskContext } from '../src/index.js';
import { createTestEngine } from '../src/testing/index.js';
import { engineBackends } from './helpers/backends.js';
import { deferred, until } from './helpers/wait.js';

// Debounce, batches, idempotency keys that expire, and schedule-to-start deadlines, on both
// backends: each decided in the rows, inside the transaction that enqueues or claims.
// (test/flow-grouping-fleet.test.ts runs them across worker processes.)

const engines: Engine[] = [];
afterEach(async () => {
  for (const engine of engines.splice(0)) await engine.stop();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

for (const backend of engineBackends) describe.skipIf(backend.skip)(`debounce, batch, keyTtl, expireIn on ${backend.name}`, () => {
  async function open(database?: string, options: { concurrency?: number } = {}) {
    const engine = await createEngine({ database: database ?? (await backend.fresh()), changeCheckIntervalMs: 10, stopTimeoutMs: 5_000, ...options });
    engines.push(engine);
    return engine;
  }

  it('debounce: a burst of one key is one promise, run once, periodMs after the last enqueue, with the last payload', async () => {
    const engine = await open();
    const runs: Array<{ doc: string; n: number; at: number }> = [];
    engine.task('reindex', async (payload: { doc: string; n: number }) => {
      runs.push({ ...payload, at: Date.now() });
      return `indexed ${payload.doc} at ${payload.n}`;
    }, { debounce: { periodMs: 300, key: (payload: { doc: string }) => payload.doc } });
    await engine.start();
    const ids: string[] = [];
    for (let n = 1; n <= 20; n++) ids.push(await engine.enqueue('reindex', { doc: 'a', n }));
    const other = await engine.enqueue('reindex', { doc: 'b', n: 1 });
    const lastEnqueueAt = Date.now();
    expect(new Set(ids).size).toBe(1);
    expect(other).not.toBe(ids[0]);
    expect(await engine.result(ids[0]!, { timeout: 10_000 })).toBe('indexed a at 20');
    await engine.result(other, { timeout: 10_000 });
    await engine.idle();
    expect(runs.filter((run) => run.doc === 'a')).toEqual([{ doc: 'a', n: 20, at: expect.any(Number) }]);
    expect(runs.filter((run) => run.doc === 'b')).toHaveLength(1);
    expect(runs[0]!.at - lastEnqueueAt).toBeGreaterThanOrEqual(250);
    expect((await engine.list({ type: 'reindex' })).map((record) => record.status)).toEqual(['completed', 'completed']);
  });

  it('debounce: maxDelayMs caps how long a busy key is pushed back; an enqueue after the run started makes a new promise', async () => {
    const engine = await open();
    const runs: Array<{ n: number; at: number }> = [];
    const release = deferred();
    engine.task('sync', async (payload: { n: number }) => {
      runs.push({ n: payload.n, at: Date.now() });
      if (runs.length === 1) await release.promise;
    }, { debounce: { periodMs: 200, maxDelayMs: 500 } });
    await engine.start();
    const firstAt = Date.now();
    const first = await engine.enqueue('sync', { n: 0 });
    // An enqueue every 50 ms would push a plain debounce back for ever; until the cap, each joins the first.
    let n = 0;
    while (Date.now() - firstAt < 400) {
      expect(await engine.enqueue('sync', { n: ++n })).toBe(first);
      await sleep(50);
    }
    await until(() => runs.length === 1, 5_000, 'the capped run');
    expect(runs[0]!.at - firstAt, 'the first run, capped by maxDelayMs').toBeLessThan(500 + 400);
    expect(runs[0]!.at - firstAt).toBeGreaterThanOrEqual(480);
    // The first promise runs: a new enqueue of the key is a new promise, with its own period.
    const second = await engine.enqueue('sync', { n: 100 });
    expect(second).not.toBe(first);
    release.resolve();
    await engine.result(second, { timeout: 10_000 });
    expect(runs.map((run) => run.n)).toEqual([runs[0]!.n, 100]);
  });

  it('batch: full batches run at once with results in order; a partial one waits waitMs; each promise settles with its own result', async () => {
    const engine = await open(undefined, { concurrency: 4 });
    const calls: number[][] = [];
    engine.task('square', async (payloads: Array<{ x: number }>, ctx: TaskContext) => {
      calls.push(payloads.map((payload) => payload.x));
      expect(ctx.batch!.ids).toHaveLength(payloads.length);
      return payloads.map((payload) => payload.x * payload.x);
    }, { batch: { size: 5, waitMs: 400 } });
    const ids = await engine.enqueueMany(Array.from({ length: 12 }, (_, x) => ({ type: 'square', payload: { x } })));
    const started = Date.now();
    await engine.start();
    await until(() => calls.length >= 2, 5_000, 'two full batches');
    expect(Date.now() - started, 'full batches do not wait').toBeLessThan(350);
    expect(calls.slice(0, 2)).toEqual([[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]);
    const results = await Promise.all(ids.map((id) => engine.result(id, { timeout: 10_000 })));
    expect(results).toEqual(Array.from({ length: 12 }, (_, x) => x * x));
    expect(calls[2]).toEqual([10, 11]);
    expect(Date.now() - started, 'the partial batch waited for waitMs').toBeGreaterThanOrEqual(380);
    expect(calls).toHaveLength(3);
  });

  it('batch: batches never mix keys; an Error entry fails its member alone; a throw fails every member’s attempt, each retried on its own', async () => {
    const engine = await open();
    const calls: string[][] = [];
    let throwOnce = true;
    engine.task('send', async (payloads: Array<{ to: string; tenant: string }>) => {
      calls.push(payloads.map((payload) => payload.to));
      if (payloads.some((payload) => payload.to === 'boom') && throwOnce) {
        throwOnce = false;
        throw new Error('smtp down');
      }
      return payloads.map((payload) => (payload.to === 'nobody' ? new NonRetryableError('NO_MAILBOX', `no mailbox ${payload.to}`) : `sent to ${payload.to}`));
    }, { batch: { size: 3, waitMs: 100, key: (payload: { tenant: string }) => payload.tenant }, retries: 2, retryDelay: 10 });
    await engine.start();
    const [a1, a2, b1, nobody] = await engine.enqueueMany([
      { type: 'send', payload: { to: 'a1', tenant: 'A' } },
      { type: 'send', payload: { to: 'a2', tenant: 'A' } },
      { type: 'send', payload: { to: 'b1', tenant: 'B' } },
      { type: 'send', payload: { to: 'nobody', tenant: 'A' } },
    ]);
    expect(await engine.result(a1!, { timeout: 10_000 })).toBe('sent to a1');
    expect(await engine.result(a2!, { timeout: 10_000 })).toBe('sent to a2');
    expect(await engine.result(b1!, { timeout: 10_000 })).toBe('sent to b1');
    await expect(engine.result(nobody!, { timeout: 10_000 })).rejects.toMatchObject({ error: { code: 'NO_MAILBOX' } });
    expect((await engine.get(nobody!))!.attempts).toBe(1);
    for (const call of calls) expect(new Set(call.map((to) => (to === 'b1' ? 'B' : 'A'))).size).toBe(1);
    expect(calls).toContainEqual(['a1', 'a2', 'nobody']);

    const boom = await engine.enqueueMany([{ type: 'send', payload: { to: 'boom', tenant: 'C' } }, { type: 'send', payload: { to: 'c2', tenant: 'C' } }]);
    expect(await Promise.all(boom.map((id) => engine.result(id, { timeout: 10_000 })))).toEqual(['sent to boom', 'sent to c2']);
    for (const id of boom) expect((await engine.get(id))!.attempts).toBe(2);
  });

  it('batch: a handler returning the wrong number of results fails every member with BATCH_RESULT_MISMATCH', async () => {
    const engine = await open();
    engine.task('sloppy', async (payloads: number[]) => payloads.slice(1), { batch: { size: 2, waitMs: 10_000 } });
    await engine.start();
    const ids = await engine.enqueueMany([{ type: 'sloppy', payload: 1 }, { type: 'sloppy', payload: 2 }]);
    for (const id of ids) await expect(engine.result(id, { timeout: 10_000 })).rejects.toMatchObject({ error: { code: 'BATCH_RESULT_MISMATCH' } });
  });

  it('keyTtl: a repeated key returns the first id until keyTtl after it settled, then makes a new promise', async () => {
    const engine = await open();
    let runs = 0;
    engine.task('charge', async () => ++runs, { keyTtl: 300 });
    await engine.start();
    const first = await engine.enqueue('charge', {}, { key: 'order-1' });
    expect(await engine.enqueue('charge', {}, { key: 'order-1' })).toBe(first);
    expect(await engine.result(first, { timeout: 10_000 })).toBe(1);
    expect(await engine.enqueue('charge', {}, { key: 'order-1' }), 'within keyTtl of settling').toBe(first);
    await sleep(350);
    const second = await engine.enqueue('charge', {}, { key: 'order-1' });
    expect(second).not.toBe(first);
    expect(await engine.result(second, { timeout: 10_000 })).toBe(2);
    expect(await engine.enqueue('charge', {}, { key: 'order-1' })).toBe(second);
    expect((await engine.get(first))!.status).toBe('completed');
  });

  it('expireIn: a promise not started in time fails with EXPIRED without running, also while every slot is busy; a dependent’s deadline counts from its release', async () => {
    const database = await backend.fresh();
    const producer = await open(database);
    producer.task('otp', async () => 'sent', { expireIn: 150 });
    const late = await producer.enqueue('otp', { to: 'a' });
    await sleep(250);

    const engine = await open(database, { concurrency: 1 });
    const ran: string[] = [];
    const blocker = deferred();
    engine.task('otp', async (payload: { to: string }) => {
      ran.push(payload.to);
      return 'sent';
    }, { expireIn: 150 });
    engine.task('slow', async () => blocker.promise);
    engine.task('after', async () => 'ran', { expireIn: 150 });
    await engine.start();
    await expect(engine.result(late, { timeout: 10_000 })).rejects.toMatchObject({ error: { code: 'EXPIRED' } });

    const slow = await engine.enqueue('slow');
    await until(async () => (await engine.get(slow))!.status === 'in_progress', 5_000, 'the slot to be taken');
    const queued = await engine.enqueue('otp', { to: 'b' });
    const enqueuedAt = Date.now();
    await expect(engine.result(queued, { timeout: 10_000 })).rejects.toMatchObject({ error: { code: 'EXPIRED' } });
    expect(Date.now() - enqueuedAt, 'failed at its deadline, not when the slot freed').toBeLessThan(1_500);
    expect((await engine.get(queued))!.attempts).toBe(0);

    const child = await engine.enqueue('after', {}, { dependsOn: [slow] });
    await sleep(300);
    blocker.resolve();
    expect(await engine.result(child, { timeout: 10_000 })).toBe('ran');
    expect(ran).toEqual([]);
    expect((await engine.deadLetters.list()).map((letter) => letter.error.code).sort()).toEqual(['EXPIRED', 'EXPIRED']);
  });

  it('bad values are refused with INVALID_OPTION at registration and at enqueue, before anything is written', async () => {
    const engine = await open();
    const bad: Array<Record<string, unknown>> = [
      { debounce: { periodMs: 0 } },
      { debounce: { periodMs: 1_000, maxDelayMs: 500 } },
      { debounce: { periodMs: 1_000, maxWaitMs: 5_000 } },
      { debounce: { periodMs: 1_000, key: 'doc' } },
      { debounce: 1_000 },
      { batch: { size: 0, waitMs: 10 } },
      { batch: { size: 10 } },
      { batch: { maxSize: 10, maxWaitMs: 50 } },
      { batch: { size: 10, waitMs: -1 } },
      { batch: { size: 10, waitMs: 10 }, debounce: { periodMs: 10 } },
      { batch: { size: 10, waitMs: 10 }, globalConcurrency: 2 },
      { keyTtl: -1 },
      { keyTtl: 1.5 },
      { keyTtl: 30 * 24 * 3600_000 },
      { expireIn: 0 },
      { expireIn: '1s' },
    ];
    for (const [index, options] of bad.entries()) {
      expect(() => engine.task(`bad-${index}`, async () => 1, options as never), JSON.stringify(options)).toThrow(expect.objectContaining({ code: 'INVALID_OPTION' }));
    }
    expect(() => engine.workflow('wf', { config: {} } as never, { steps: { a: async () => 1 }, stepOptions: { batch: { size: 2, waitMs: 1 } } as never })).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTION' }),
    );
    engine.task('debounced', async () => 1, { debounce: { periodMs: 100, key: (payload: { doc?: unknown }) => payload.doc as string } });
    engine.task('batched', async () => undefined, { batch: { size: 2, waitMs: 10, key: () => '' } });
    await expect(engine.enqueue('batched', {}), 'a key function that returns an empty key').rejects.toMatchObject({ code: 'INVALID_OPTION' });
    await expect(engine.enqueue('debounced', { doc: 1 })).rejects.toMatchObject({ code: 'INVALID_OPTION' });
    await expect(engine.enqueue('debounced', { doc: 'a' }, { delay: 10 })).rejects.toMatchObject({ code: 'INVALID_OPTION' });
    await expect(engine.enqueue('debounced', { doc: 'a' }, { key: 'k' })).rejects.toMatchObject({ code: 'INVALID_OPTION' });
    await expect(engine.enqueue('debounced', { doc: 'a' }, { dependsOn: ['1'] })).rejects.toMatchObject({ code: 'INVALID_OPTION' });
    await expect(engine.enqueue('batched', {}, { concurrencyKey: 'k' })).rejects.toMatchObject({ code: 'INVALID_OPTION' });
    expect(await engine.list()).toEqual([]);
  });
});

describe('debounce, batch and expireIn on a virtual clock and in immediate mode', () => {
  it('a test engine fires a debounced run, a due batch and an expiry when its clock is moved past them', async () => {
    const runs: string[] = [];
    const t = await createTestEngine({
      register: (engine) => {
        engine.task('save', async (payload: { rev: number }) => void runs.push(`save ${payload.rev}`), { debounce: { periodMs: 1_000 } });
        engine.task('pack', async (payloads: number[]) => void runs.push(`pack ${payloads.join(',')}`), { batch: { size: 10, waitMs: 5_000 } });
        engine.task('otp', async () => void runs.push('otp'), { expireIn: 2_000 });
      },
    });
    try {
      // A pause does not stop a deadline's clock.
      await t.pause('otp');
      const otp = await t.enqueue('otp');
      const saves = [await t.enqueue('save', { rev: 1 }), await t.enqueue('save', { rev: 2 })];
      await t.enqueueMany([{ type: 'pack', payload: 1 }, { type: 'pack', payload: 2 }]);
      await t.advance(999);
      expect(runs).toEqual([]);
      await t.advance(2);
      expect(runs).toEqual(['save 2']);
      expect(saves[0]).toBe(saves[1]);
      expect((await t.get(otp))!.status).toBe('pending');
      await t.advance(1_000);
      expect((await t.get(otp))!.error).toMatchObject({ code: 'EXPIRED' });
      await t.advance('5s');
      expect(runs).toEqual(['save 2', 'pack 1,2']);
    } finally {
      await t.stop();
    }
  });

  it('immediate mode runs a batched enqueue at once, as a batch of what is there', async () => {
    const engine = await createEngine({ database: ':memory:', immediate: true });
    engines.push(engine);
    const calls: number[][] = [];
    engine.task('pack', async (payloads: number[]) => {
      calls.push(payloads);
      return payloads.map((n) => n + 1);
    }, { batch: { size: 10, waitMs: 60_000 } });
    const ids = await engine.enqueueMany([{ type: 'pack', payload: 1 }, { type: 'pack', payload: 2 }]);
    expect(calls).toEqual([[1, 2]]);
    expect(await Promise.all(ids.map((id) => engine.result(id)))).toEqual([2, 3]);
  });
});
