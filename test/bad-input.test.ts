import fs from 'node:fs';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { createEngine, PromisedError, type Engine } from '../src/index.js';
import { engineBackends } from './helpers/backends.js';
import { dumpDatabase, dumpDb } from './helpers/db-dump.js';
import { tempDbPath, tempDir } from './helpers/temp-db.js';
import { runCli } from './fixtures/cli-run.js';

let engine: Engine | undefined;
afterEach(async () => {
  await engine?.stop();
  engine = undefined;
});

async function openWithData(database?: string) {
  const file = database ?? tempDbPath();
  engine = await createEngine({ database: file, changeCheckIntervalMs: 0 });
  engine.task('work', async (payload: { n?: number }) => payload.n ?? 0);
  const first = await engine.enqueue('work', { n: 1 });
  const second = await engine.enqueue('work', { n: 2 }, { dependsOn: [first] });
  return { file, engine, first, second };
}

/** Asserts `call` rejects with a PromisedError of `code` and leaves every row of the database as it was. */
async function expectRefused(file: string, code: string, call: () => Promise<unknown>) {
  const before = await dumpDatabase(file);
  const error = await call().then(
    () => undefined,
    (thrown: unknown) => thrown,
  );
  expect(error, `expected ${code}`).toBeInstanceOf(PromisedError);
  expect((error as PromisedError).code).toBe(code);
  expect(await dumpDatabase(file)).toEqual(before);
  return error as PromisedError;
}

// The API's refusals, on both backends.
for (const backend of engineBackends) describe.skipIf(backend.skip)(`bad input is refused before anything is written (${backend.name})`, () => {
    it('unknown task type', async () => {
      const { file, engine } = await openWithData(await backend.fresh());
      const error = await expectRefused(file, 'UNKNOWN_TASK_TYPE', () => engine.enqueue('nope', {}));
      expect(error.message).toContain('nope');
    });

    it.each([
      ['a function', { f: () => 1 }],
      ['a BigInt', { n: 10n }],
      ['a Map', { m: new Map([[1, 2]]) }],
      ['NaN', { n: Number.NaN }],
      ['a symbol', { s: Symbol('x') }],
    ])('payload holding %s', async (_label, payload) => {
      const { file, engine } = await openWithData(await backend.fresh());
      await expectRefused(file, 'INVALID_PAYLOAD', () => engine.enqueue('work', payload));
    });

    it.each([[1e16], [-1e16], [new Date(Number.NaN)]])('an inbox message received at %s (outside a Date)', async (receivedAt) => {
      const { file, engine } = await openWithData(await backend.fresh());
      const inbox = engine.inbox('mail', async () => undefined, { catchUpWindow: 60_000 });
      await expectRefused(file, 'INVALID_MESSAGE', () => inbox.receive({ subject: 'hi' }, { id: 'm1', receivedAt }));
    });

    it('circular payload', async () => {
      const { file, engine } = await openWithData(await backend.fresh());
      const payload: Record<string, unknown> = { a: 1 };
      payload.self = payload;
      const error = await expectRefused(file, 'INVALID_PAYLOAD', () => engine.enqueue('work', payload));
      expect(error.message).toContain('payload.self');
    });

    it.each([
      ['priority above range', { priority: 1001 }],
      ['priority below range', { priority: -1001 }],
      ['fractional priority', { priority: 1.5 }],
      ['priority of the wrong type', { priority: 'high' as unknown as number }],
      ['negative delay', { delay: -1 }],
      ['delay beyond a year', { delay: 400 * 24 * 3600_000 }],
      ['empty key', { key: '' }],
    ])('%s', async (_label, options) => {
      const { file, engine } = await openWithData(await backend.fresh());
      await expectRefused(file, 'INVALID_OPTION', () => engine.enqueue('work', {}, options));
    });

    it('dependsOn naming an unknown promise', async () => {
      const { file, engine, first } = await openWithData(await backend.fresh());
      const error = await expectRefused(file, 'UNKNOWN_DEPENDENCY', () => engine.enqueue('work', {}, { dependsOn: [first, '999999'] }));
      expect(error.message).toContain('999999');
      await expectRefused(file, 'UNKNOWN_DEPENDENCY', () => engine.enqueue('work', {}, { dependsOn: ['not-an-id'] }));
    });

    it('enqueueMany with one bad item writes none of them', async () => {
      const { file, engine } = await openWithData(await backend.fresh());
      await expectRefused(file, 'INVALID_PAYLOAD', () =>
        engine.enqueueMany([
          { type: 'work', payload: { n: 1 } },
          { type: 'work', payload: { n: 2n } },
        ]),
      );
      await expectRefused(file, 'UNKNOWN_DEPENDENCY', () =>
        engine.enqueueMany([
          { type: 'work', payload: { n: 1 } },
          { type: 'work', payload: { n: 2 }, dependsOn: ['424242'] },
        ]),
      );
    });

    it('a dependency cycle in enqueueGraph', async () => {
      const { file, engine } = await openWithData(await backend.fresh());
      const error = await expectRefused(file, 'DEPENDENCY_CYCLE', () =>
        engine.enqueueGraph({
          a: { type: 'work', dependsOn: ['c'] },
          b: { type: 'work', dependsOn: ['a'] },
          c: { type: 'work', dependsOn: ['b'] },
        }),
      );
      expect(error.message).toMatch(/a -> c -> b -> a|c -> b -> a -> c|b -> a -> c -> b/);
    });

    it('a self-dependency in enqueueGraph', async () => {
      const { file, engine } = await openWithData(await backend.fresh());
      await expectRefused(file, 'DEPENDENCY_CYCLE', () => engine.enqueueGraph({ a: { type: 'work', dependsOn: ['a'] } }));
    });

    it('a graph node depending on an unknown promise rolls back the whole graph', async () => {
      const { file, engine } = await openWithData(await backend.fresh());
      await expectRefused(file, 'UNKNOWN_DEPENDENCY', () =>
        engine.enqueueGraph({
          a: { type: 'work' },
          b: { type: 'work', dependsOn: ['a', '777777'] },
        }),
      );
    });

    it('result() of an unknown id', async () => {
      const { file, engine } = await openWithData(await backend.fresh());
      await expectRefused(file, 'NOT_FOUND', () => engine.result('123456'));
      await expectRefused(file, 'NOT_FOUND', () => engine.result('x'));
    });

    it('cancel or retry where the machine refuses it', async () => {
      const { file, engine, first } = await openWithData(await backend.fresh());
      await expectRefused(file, 'INVALID_TRANSITION', () => engine.retry(first));
      await expectRefused(file, 'NOT_FOUND', () => engine.cancel('31337'));
    });

    it('a repeated idempotency key returns the existing id and writes nothing', async () => {
      const { file, engine } = await openWithData(await backend.fresh());
      const id = await engine.enqueue('work', { n: 5 }, { key: 'job:5' });
      const before = await dumpDatabase(file);
      expect(await engine.enqueue('work', { n: 6 }, { key: 'job:5' })).toBe(id);
      expect(await dumpDatabase(file)).toEqual(before);
    });
});

// Files that are not (or not yet, or no longer) a promised database: SQLite's own cases.
describe('bad database files are refused (SQLite)', () => {
  it('a database path in a missing folder', async () => {
    const file = path.join(tempDir(), 'missing', 'promised.db');
    const error = await createEngine({ database: file }).catch((thrown: unknown) => thrown);
    expect((error as PromisedError).code).toBe('DATABASE_DIRECTORY_MISSING');
    expect(fs.existsSync(path.dirname(file))).toBe(false);
  });

  it('a file with corrupted pages: get, list, stats, start and the CLI answer DATABASE_CORRUPT and say what to do', async () => {
    const file = tempDbPath();
    const writer = await createEngine({ database: file, changeCheckIntervalMs: 0 });
    writer.task('work', async () => 1);
    await writer.enqueueMany(Array.from({ length: 3_000 }, (_, i) => ({ type: 'work', payload: { i, pad: 'x'.repeat(200) } })));
    await writer.stop();
    // Damage data pages of the second half of the file (the schema pages stay readable).
    const fd = fs.openSync(file, 'r+');
    const pages = Math.floor(fs.fstatSync(fd).size / 4096);
    for (let page = Math.floor(pages / 2); page < pages; page += 5) fs.writeSync(fd, Buffer.alloc(4096, 0xab), 0, 4096, page * 4096);
    fs.closeSync(fd);
    for (const call of [
      (e: Engine) => Promise.all(Array.from({ length: 60 }, (_, i) => e.get(String(1 + i * 50)))),
      (e: Engine) => e.list({ limit: 10_000 }),
      (e: Engine) => e.stats(),
      (e: Engine) => e.start(),
    ]) {
      engine = await createEngine({ database: file, changeCheckIntervalMs: 0 });
      engine.task('work', async () => 1);
      const error = await call(engine).then(
        () => undefined,
        (thrown: unknown) => thrown as PromisedError,
      );
      expect(error, String(call)).toBeInstanceOf(PromisedError);
      expect(error!.code).toBe('DATABASE_CORRUPT');
      expect(error!.message).toMatch(/restore it from a backup/);
      await engine.stop().catch(() => undefined);
      engine = undefined;
    }
    const cli = await runCli(['stats', '--db', file]);
    expect(cli.code).not.toBe(0);
    expect(cli.stderr).toMatch(/DATABASE_CORRUPT|damaged/);
  });

  it('a read-only database file', async () => {
    const { file } = await openWithData();
    await engine!.stop();
    engine = undefined;
    const before = dumpDb(file);
    fs.chmodSync(file, 0o444);
    const error = await createEngine({ database: file }).catch((thrown: unknown) => thrown);
    expect((error as PromisedError).code).toBe('DATABASE_READ_ONLY');
    expect(dumpDb(file)).toEqual(before);
  });

  it('a file that is not a promised database', async () => {
    const file = tempDbPath();
    const other = new BetterSqlite3(file);
    other.exec(`create table customers (id integer primary key, name text); insert into customers (name) values ('ada')`);
    other.close();
    const before = dumpDb(file);
    const error = await createEngine({ database: file }).catch((thrown: unknown) => thrown);
    expect((error as PromisedError).code).toBe('DATABASE_NOT_PROMISED');
    expect(dumpDb(file)).toEqual(before);
  });

  it('a file that is not SQLite at all', async () => {
    const file = tempDbPath();
    fs.writeFileSync(file, 'these are not the bytes you are looking for'.repeat(200));
    const error = await createEngine({ database: file }).catch((thrown: unknown) => thrown);
    expect((error as PromisedError).code).toBe('DATABASE_NOT_PROMISED');
  });

  it('a database migrated by a newer promised', async () => {
    const { file } = await openWithData();
    await engine!.stop();
    engine = undefined;
    const db = new BetterSqlite3(file);
    db.prepare(`insert into promised_migration (name, timestamp) values ('9999_future', '2030-01-01')`).run();
    db.close();
    const error = await createEngine({ database: file }).catch((thrown: unknown) => thrown);
    expect((error as PromisedError).code).toBe('DATABASE_SCHEMA_TOO_NEW');
  });

  it('invalid task and engine options', async () => {
    const file = tempDbPath();
    await expect(createEngine({ database: file, concurrency: 0 })).rejects.toMatchObject({ code: 'INVALID_OPTION' });
    expect(fs.existsSync(file)).toBe(false);
    engine = await createEngine({ database: file });
    expect(() => engine!.task('t', async () => 1, { retries: -1 })).toThrow(expect.objectContaining({ code: 'INVALID_OPTION' }));
    expect(() => engine!.task('t', async () => 1, { timeout: 0 })).toThrow(expect.objectContaining({ code: 'INVALID_OPTION' }));
    engine.task('t', async () => 1);
    expect(() => engine!.task('t', async () => 1)).toThrow(expect.objectContaining({ code: 'DUPLICATE_TASK' }));
  });
});
