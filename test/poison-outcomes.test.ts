import { afterEach, describe, expect, it } from 'vitest';
import { createEngine, type Engine, type EngineOptions } from '../src/index.js';
import { engineBackends, executeSql } from './helpers/backends.js';

// One outcome the database refuses fails that promise alone: never its batch, its worker or
// the fleet. Text a backend cannot store (U+0000, lone surrogates, a message that is not a
// string) is made storable, or refused at the boundary, the same way on both backends.

const engines: Engine[] = [];
afterEach(async () => {
  for (const engine of engines.splice(0)) await engine.stop();
});

for (const backend of engineBackends) describe.skipIf(backend.skip)(`poison outcomes on ${backend.name}`, () => {
  async function open(database: string, options: EngineOptions = {}) {
    const engine = await createEngine({ database, changeCheckIntervalMs: 20, stopTimeoutMs: 5_000, ...options });
    engines.push(engine);
    return engine;
  }

  it('an error message with U+0000, a lone surrogate or an object is stored, made storable the same way on both backends', async () => {
    const engine = await open(await backend.fresh());
    const messages: unknown[] = ['binary\u0000body', 'half \ud83d pair', { not: 'a string' }];
    engine.task('throws', async (payload: { index: number }) => {
      const error = new Error('placeholder');
      (error as { message: unknown }).message = messages[payload.index];
      throw error;
    });
    engine.task('fine', async () => 'ok');
    await engine.start();
    const poisoned = await engine.enqueueMany(messages.map((_, index) => ({ type: 'throws', payload: { index } })));
    const fine = await engine.enqueueMany(Array.from({ length: 20 }, () => ({ type: 'fine' })));
    for (const id of fine) expect(await engine.result(id, { timeout: 10_000 })).toBe('ok');
    const errors = [];
    for (const id of poisoned) {
      await expect(engine.result(id, { timeout: 10_000 })).rejects.toMatchObject({ code: 'PROMISE_FAILED' });
      errors.push((await engine.get(id))!.error);
    }
    expect(errors).toEqual([
      { code: 'HANDLER_ERROR', message: 'binary\ufffdbody' },
      { code: 'HANDLER_ERROR', message: 'half \ufffd pair' },
      { code: 'HANDLER_ERROR', message: '{"not":"a string"}' },
    ]);
  });

  it('an outcome the database refuses fails its promise alone; its batch, its worker and a second worker go on', async () => {
    const database = await backend.fresh();
    const first = await open(database, { concurrency: 8 });
    const second = await open(database, { concurrency: 8 });
    // A refusal of the database (a constraint, an encoding it rejects) for one promise's completion.
    await executeSql(
      database,
      backend.name === 'PostgreSQL'
        ? `create function refuse_poison() returns trigger language plpgsql as $$ begin raise exception 'value refused by the database'; end $$;
           create trigger refuse_poison before update on promises for each row when (new.status = 'completed' and new.payload like '%poison%') execute function refuse_poison();`
        : `create trigger refuse_poison before update on promises when new.status = 'completed' and new.payload like '%poison%' begin select raise(abort, 'value refused by the database'); end;`,
    );
    for (const engine of [first, second]) engine.task('work', async (payload: { name: string }) => payload.name, { retries: 3, retryDelay: 10 });
    await first.start();
    await second.start();
    // Handlers that finish in the same turn commit in one batch: the poison rides with healthy outcomes.
    const ids = await first.enqueueMany(Array.from({ length: 40 }, (_, i) => ({ type: 'work', payload: { name: i === 7 ? 'poison' : `ok-${i}` } })));
    const results = await Promise.allSettled(ids.map((id) => first.result(id, { timeout: 15_000 })));
    expect(results.filter((result) => result.status === 'fulfilled')).toHaveLength(39);
    const poison = (await first.get(ids[7]!))!;
    expect(poison.status).toBe('failed');
    expect(poison.error!.code).toBe('OUTCOME_NOT_STORABLE');
    expect(poison.error!.message).toMatch(/value refused by the database/);
    // Failed for good on its first refusal: a retry would run the handler again for an outcome that cannot be stored.
    expect(poison.attempts).toBe(1);
    // Both workers still work, and stop.
    const after = await second.enqueueMany(Array.from({ length: 10 }, (_, i) => ({ type: 'work', payload: { name: `after-${i}` } })));
    for (const id of after) expect(await second.result(id, { timeout: 10_000 })).toMatch(/^after-/);
    await Promise.all([first.stop(), second.stop()]);
  });

  it('a task type or key a database cannot store is refused with a typed error before anything is written', async () => {
    const engine = await open(await backend.fresh());
    for (const type of ['nul\u0000type', 'lone\ud800']) expect(() => engine.task(type, async () => 1)).toThrow(expect.objectContaining({ code: 'INVALID_OPTION' }));
    engine.task('ok', async () => 1);
    await expect(engine.enqueue('ok', {}, { key: 'k\u0000' })).rejects.toMatchObject({ code: 'INVALID_OPTION' });
    await expect(engine.enqueue('ok', {}, { key: '\udfff' })).rejects.toMatchObject({ code: 'INVALID_OPTION' });
    expect(await engine.list()).toEqual([]);
    expect(engine.taskTypes).toEqual(['ok']);
  });
});
