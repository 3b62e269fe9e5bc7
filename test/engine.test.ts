import { afterEach, describe, expect, it } from 'vitest';
import { createEngine, type Engine, type EngineOptions, type TransitionEvent } from '../src/index.js';
import { engineBackends, executeSql } from './helpers/backends.js';
import { deferred, until } from './helpers/wait.js';

const engines: Engine[] = [];
afterEach(async () => {
  for (const engine of engines.splice(0)) await engine.stop();
});


// Every behaviour here runs on both backends: a SQLite file and a throwaway PostgreSQL server.
for (const backend of engineBackends) describe.skipIf(backend.skip)(`engine on ${backend.name}`, () => {
  async function open(options: EngineOptions = {}) {
    const engine = await createEngine({ database: await backend.fresh(), changeCheckIntervalMs: 0, stopTimeoutMs: 2_000, ...options });
    engines.push(engine);
    return engine;
  }

  describe('running promises', () => {
    it('enqueues, runs and stores the result', async () => {
      const engine = await open();
      engine.task('double', async (payload: { n: number }) => ({ value: payload.n * 2 }));
      await engine.start();
      const id = await engine.enqueue('double', { n: 21 });
      expect(await engine.result(id, { timeout: 5_000 })).toEqual({ value: 42 });
      const record = await engine.get(id);
      expect(record).toMatchObject({ id, type: 'double', status: 'completed', payload: { n: 21 }, result: { value: 42 }, error: null, attempts: 1, maxAttempts: 1, dependsOn: [] });
      expect(record!.completedAt!.getTime()).toBeGreaterThanOrEqual(record!.startedAt!.getTime());
      expect(record!.createdAt).toBeInstanceOf(Date);
    });

    it('releases dependents in the same commit as the parent completes, without polling', async () => {
      // changeCheckIntervalMs: 0 turns off the only timer that could look at the database.
      const engine = await open({ changeCheckIntervalMs: 0 });
      const order: string[] = [];
      engine.task('step', async (payload: { name: string }) => {
        order.push(payload.name);
        return payload.name;
      });
      const transitions: TransitionEvent[] = [];
      engine.on('transition', (t) => transitions.push(t));
      await engine.start();
      const ids = await engine.enqueueGraph({
        setup: { type: 'step', payload: { name: 'setup' } },
        tests: { type: 'step', payload: { name: 'tests' }, dependsOn: ['setup'] },
        run: { type: 'step', payload: { name: 'run' }, dependsOn: ['tests'] },
      });
      expect((await engine.get(ids.tests!))!.status).toBe('waiting');
      expect(await engine.result(ids.run!, { timeout: 5_000 })).toBe('run');
      expect(order).toEqual(['setup', 'tests', 'run']);
      expect((await engine.get(ids.run!))!.dependsOn).toEqual([ids.tests]);
      const succeeded = transitions.find((t) => t.id === ids.setup && t.event === 'SUCCEED')!;
      const released = transitions.find((t) => t.id === ids.tests && t.event === 'DEPENDENCIES_RESOLVED')!;
      expect(released.at.getTime()).toBe(succeeded.at.getTime());
      expect(transitions.indexOf(released)).toBe(transitions.indexOf(succeeded) + 1);
    });

    it('a fan-in child waits for every parent', async () => {
      const engine = await open({ concurrency: 3 });
      const gates = [deferred(), deferred(), deferred()];
      engine.task('part', async (payload: { i: number }) => gates[payload.i]!.promise);
      engine.task('join', async () => 'joined');
      await engine.start();
      const parts = await engine.enqueueMany([0, 1, 2].map((i) => ({ type: 'part', payload: { i } })));
      const join = await engine.enqueue('join', {}, { dependsOn: parts });
      gates[0]!.resolve();
      gates[1]!.resolve();
      await until(async () => (await engine.stats()).completed === 2);
      expect((await engine.get(join))!.status).toBe('waiting');
      gates[2]!.resolve();
      expect(await engine.result(join, { timeout: 5_000 })).toBe('joined');
    });

    it('a parent that fails for good fails every descendant with DEPENDENCY_FAILED', async () => {
      const engine = await open();
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
      await expect(engine.result(ids.parent!, { timeout: 5_000 })).rejects.toMatchObject({ code: 'PROMISE_FAILED', error: { code: 'HANDLER_ERROR', message: 'kaput' } });
      for (const name of ['child', 'grandchild']) {
        const record = await engine.get(ids[name]!);
        expect(record).toMatchObject({ status: 'failed', error: { code: 'DEPENDENCY_FAILED' }, attempts: 0 });
      }
      // A promise that depends on an already failed one fails at once.
      const late = await engine.enqueue('ok', {}, { dependsOn: [ids.parent!] });
      expect((await engine.get(late))!.error?.code).toBe('DEPENDENCY_FAILED');
    });

    it('retries with backoff until an attempt succeeds', async () => {
      const engine = await open();
      const attemptTimes: number[] = [];
      engine.task(
        'flaky',
        async (_payload, ctx) => {
          attemptTimes.push(Date.now());
          if (ctx.attempt < 3) throw new Error(`attempt ${ctx.attempt} failed`);
          return ctx.attempt;
        },
        { retries: 3, retryDelay: 40 },
      );
      const retrying: string[] = [];
      engine.on('retrying', (record) => retrying.push(record.error!.message));
      await engine.start();
      const id = await engine.enqueue('flaky', {});
      expect(await engine.result(id, { timeout: 5_000 })).toBe(3);
      expect(retrying).toEqual(['attempt 1 failed', 'attempt 2 failed']);
      expect((await engine.get(id))!.attempts).toBe(3);
      // Equal jitter: at least half the nominal delay (40 ms, then 80 ms).
      expect(attemptTimes[1]! - attemptTimes[0]!).toBeGreaterThanOrEqual(20 - 2);
      expect(attemptTimes[2]! - attemptTimes[1]!).toBeGreaterThanOrEqual(40 - 2);
    });

    it('fails for good when attempts run out', async () => {
      const engine = await open();
      let calls = 0;
      engine.task(
        'always',
        async () => {
          calls++;
          throw new Error('no');
        },
        { retries: 2, retryDelay: 1 },
      );
      await engine.start();
      const id = await engine.enqueue('always', {});
      await expect(engine.result(id, { timeout: 5_000 })).rejects.toMatchObject({ code: 'PROMISE_FAILED' });
      expect(calls).toBe(3);
      expect(await engine.stats()).toMatchObject({ failed: 1, deadLetters: 1 });
    });

    it('waits for a delay before the first attempt', async () => {
      const engine = await open();
      engine.task('later', async () => Date.now());
      await engine.start();
      const before = Date.now();
      const id = await engine.enqueue('later', {}, { delay: 150 });
      const ranAt = await engine.result<number>(id, { timeout: 5_000 });
      expect(ranAt - before).toBeGreaterThanOrEqual(150);
    });

    it('runs higher priorities first', async () => {
      const engine = await open({ concurrency: 1 });
      const ran: number[] = [];
      engine.task('p', async (payload: { p: number }) => ran.push(payload.p));
      await engine.enqueueMany([1, 5, -3, 9, 0].map((p) => ({ type: 'p', payload: { p }, priority: p })));
      await engine.start();
      await until(async () => (await engine.stats()).completed === 5);
      expect(ran).toEqual([9, 5, 1, 0, -3]);
    });

    it('never runs more handlers at once than its concurrency', async () => {
      const engine = await open({ concurrency: 3 });
      let running = 0;
      let peak = 0;
      engine.task('busy', async () => {
        running++;
        peak = Math.max(peak, running);
        await new Promise((resolve) => setTimeout(resolve, 5));
        running--;
      });
      await engine.start();
      await engine.enqueueMany(Array.from({ length: 30 }, () => ({ type: 'busy' })));
      await until(async () => (await engine.stats()).completed === 30);
      expect(peak).toBe(3);
    });

    it('times an attempt out through its AbortSignal', async () => {
      const engine = await open();
      let aborted: unknown;
      engine.task(
        'slow',
        (_payload, ctx) =>
          new Promise((resolve) => {
            ctx.signal.addEventListener('abort', () => {
              aborted = ctx.signal.reason;
              resolve('too late');
            });
          }),
        { timeout: 50 },
      );
      await engine.start();
      const id = await engine.enqueue('slow', {});
      await expect(engine.result(id, { timeout: 5_000 })).rejects.toMatchObject({ error: { code: 'TIMEOUT' } });
      expect(aborted).toMatchObject({ code: 'TIMEOUT' });
    });

    it('cancels a running promise: its signal aborts and its dependents fail', async () => {
      const engine = await open();
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
      // The abandoned handler's outcome is never committed over the cancellation.
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect((await engine.get(ids.long!))!.status).toBe('failed');
    });

    it('a cancel from another process aborts the running handler with CANCELLED', async () => {
      const file = await backend.fresh();
      const worker = await createEngine({ database: file, changeCheckIntervalMs: 10 });
      engines.push(worker);
      const started = deferred();
      let reason: unknown;
      worker.task('long', (_payload, ctx) => {
        started.resolve();
        return new Promise((resolve) => ctx.signal.addEventListener('abort', () => resolve((reason = ctx.signal.reason))));
      });
      await worker.start();
      const id = await worker.enqueue('long', {});
      await started.promise;
      const other = await createEngine({ database: file, changeCheckIntervalMs: 0 });
      engines.push(other);
      await other.cancel(id);
      await until(() => reason !== undefined, 5_000, 'the abort to reach the handler');
      expect(reason).toMatchObject({ code: 'CANCELLED' });
      expect(await other.get(id)).toMatchObject({ status: 'failed', error: { code: 'CANCELLED' } });
    });

    it('cancels pending and waiting promises', async () => {
      const engine = await open();
      engine.task('t', async () => 1);
      const a = await engine.enqueue('t', {});
      const b = await engine.enqueue('t', {}, { dependsOn: [a] });
      await engine.cancel(b);
      await engine.cancel(a);
      expect((await engine.get(a))!.error?.code).toBe('CANCELLED');
      expect((await engine.get(b))!).toMatchObject({ status: 'failed', error: { code: 'CANCELLED' } });
    });

    it('retry() sends a failed promise back to pending with attempts reset', async () => {
      const engine = await open();
      let fail = true;
      engine.task('t', async () => {
        if (fail) throw new Error('first time');
        return 'second time';
      });
      await engine.start();
      const id = await engine.enqueue('t', {});
      await expect(engine.result(id, { timeout: 5_000 })).rejects.toMatchObject({ code: 'PROMISE_FAILED' });
      fail = false;
      await engine.retry(id);
      expect(await engine.result(id, { timeout: 5_000 })).toBe('second time');
      expect((await engine.get(id))!).toMatchObject({ attempts: 1, error: null });
    });

    it('persists progress and emits it', async () => {
      const engine = await open();
      const seen: Array<[number, number]> = [];
      engine.on('progress', (p) => seen.push([p.current, p.total]));
      const release = deferred();
      engine.task('steps', async (_payload, ctx) => {
        ctx.progress(1, 3);
        ctx.progress(2, 3);
        await release.promise;
      });
      await engine.start();
      const id = await engine.enqueue('steps', {});
      await until(async () => (await engine.get(id))!.progress?.current === 2, 5_000, 'progress on disk');
      expect((await engine.get(id))!.progress).toEqual({ current: 2, total: 3 });
      expect(seen).toEqual([
        [1, 3],
        [2, 3],
      ]);
      release.resolve();
      await engine.result(id, { timeout: 5_000 });
    });

    it('result() rejects with TIMEOUT when the promise does not finish in time', async () => {
      const engine = await open();
      engine.task('t', async () => 1);
      const id = await engine.enqueue('t', {});
      await expect(engine.result(id, { timeout: 30 })).rejects.toMatchObject({ code: 'TIMEOUT' });
    });

    it('result() sees a promise finished by another engine on the same file', async () => {
      const file = await backend.fresh();
      const waiter = await createEngine({ database: file, changeCheckIntervalMs: 10 });
      engines.push(waiter);
      waiter.task('t', async () => 'from the other one');
      const id = await waiter.enqueue('t', {});
      const worker = await createEngine({ database: file, changeCheckIntervalMs: 10 });
      engines.push(worker);
      worker.task('t', async () => 'from the other one');
      const result = waiter.result(id, { timeout: 5_000 });
      await worker.start();
      expect(await result).toBe('from the other one');
    });
  });

  describe('immediate mode', () => {
    it('runs the promise before enqueue returns', async () => {
      const engine = await open({ immediate: true });
      engine.task('t', async (payload: { n: number }) => payload.n + 1);
      const before = Date.now();
      const id = await engine.enqueue('t', { n: 1 });
      const record = await engine.get(id);
      expect(record).toMatchObject({ status: 'completed', result: 2 });
      // Real times, even though delays are ignored.
      expect(record!.startedAt!.getTime()).toBeGreaterThanOrEqual(before);
      expect(record!.startedAt!.getTime()).toBeLessThanOrEqual(Date.now());
    });

    it('runs a whole graph, retries included, ignoring delays', async () => {
      const engine = await open({ immediate: true });
      let attempts = 0;
      engine.task('flaky', async () => {
        if (++attempts < 2) throw new Error('once');
        return 'ok';
      }, { retries: 1, retryDelay: 60_000 });
      engine.task('t', async () => 'ok');
      const ids = await engine.enqueueGraph({
        a: { type: 'flaky', delay: 60_000 },
        b: { type: 't', dependsOn: ['a'] },
      });
      expect(await engine.get(ids.a!)).toMatchObject({ status: 'completed', attempts: 2 });
      expect(await engine.get(ids.b!)).toMatchObject({ status: 'completed' });
    });
  });

  describe('starting and stopping', () => {
    it('start() resumes what an earlier engine left and says how much', async () => {
      const file = await backend.fresh();
      const first = await createEngine({ database: file, changeCheckIntervalMs: 0 });
      first.task('t', async () => 1);
      const ids = await first.enqueueGraph({ a: { type: 't' }, b: { type: 't', dependsOn: ['a'] } });
      await first.enqueue('t', {});
      await first.stop();

      const second = await createEngine({ database: file, changeCheckIntervalMs: 0 });
      engines.push(second);
      second.task('t', async () => 2);
      const summary = await second.start();
      expect(summary.resumed).toEqual({ waiting: 1, pending: 2, in_progress: 0, total: 3 });
      expect(await second.result(ids.b!, { timeout: 5_000 })).toBe(2);
    });

    it('stop() waits for running handlers and commits their outcome', async () => {
      const file = await backend.fresh();
      const engine = await createEngine({ database: file, changeCheckIntervalMs: 0 });
      const started = deferred();
      engine.task('t', async () => {
        started.resolve();
        await new Promise((resolve) => setTimeout(resolve, 100));
        return 'finished';
      });
      await engine.start();
      const id = await engine.enqueue('t', {});
      await started.promise;
      await engine.stop();
      const reader = await createEngine({ database: file, changeCheckIntervalMs: 0 });
      engines.push(reader);
      expect(await reader.get(id)).toMatchObject({ status: 'completed', result: 'finished', attempts: 1 });
    });

    it('stop() past its timeout hands running claims back without counting the attempt', async () => {
      const file = await backend.fresh();
      const engine = await createEngine({ database: file, changeCheckIntervalMs: 0, stopTimeoutMs: 50 });
      const started = deferred();
      let aborted: unknown;
      engine.task('stuck', (_payload, ctx) => {
        started.resolve();
        return new Promise(() => ctx.signal.addEventListener('abort', () => (aborted = ctx.signal.reason)));
      });
      await engine.start();
      const id = await engine.enqueue('stuck', {});
      await started.promise;
      await engine.stop();
      expect(aborted).toMatchObject({ code: 'ENGINE_STOPPED' });
      const reader = await createEngine({ database: file, changeCheckIntervalMs: 0 });
      engines.push(reader);
      expect(await reader.get(id)).toMatchObject({ status: 'pending', attempts: 0 });
    });

    it('repairs a snapshot that does not match its status when resuming', async () => {
      const file = await backend.fresh();
      const first = await createEngine({ database: file, changeCheckIntervalMs: 0 });
      first.task('t', async () => 'done');
      const id = await first.enqueue('t', {});
      await first.stop();
      await executeSql(file, `update promises set snapshot = '{"garbage":true}' where id = ${Number(id)}`);
      const second = await createEngine({ database: file, changeCheckIntervalMs: 0 });
      engines.push(second);
      second.task('t', async () => 'done');
      const summary = await second.start();
      expect(summary.repairedSnapshots).toBe(1);
      expect(await second.result(id, { timeout: 5_000 })).toBe('done');
    });

    it('repairs a snapshot that is not even JSON, and keeps serving the rest', async () => {
      const file = await backend.fresh();
      const first = await createEngine({ database: file, changeCheckIntervalMs: 0 });
      first.task('t', async (payload: { n: number }) => payload.n);
      const ids = await first.enqueueMany([1, 2, 3].map((n) => ({ type: 't', payload: { n } })));
      await first.stop();
      await executeSql(file, `update promises set snapshot = 'torn write {' where id = ${Number(ids[1])}`);
      const second = await createEngine({ database: file, changeCheckIntervalMs: 0 });
      engines.push(second);
      second.task('t', async (payload: { n: number }) => payload.n);
      const summary = await second.start();
      expect(summary.repairedSnapshots).toBe(1);
      expect(await Promise.all(ids.map((id) => second.result(id, { timeout: 5_000 })))).toEqual([1, 2, 3]);
    });
  });
});
