import { afterEach, describe, expect, it } from 'vitest';
import { createEngine, InvalidPayloadError, PromisedError, type Engine } from '../src/index.js';
import { MAX_JSON_DEPTH, toJsonText } from '../src/json.js';
import { runCli, tasksModule } from './fixtures/cli-run.js';
import { dumpDb } from './helpers/db-dump.js';
import { tempDbPath, tempDir } from './helpers/temp-db.js';

// Values that JSON.stringify cannot take, or takes by running user code (toJSON, getters), are
// refused at the boundary as INVALID_PAYLOAD with the path of the culprit: never a RangeError or
// the user's own exception, and never after something was written.

/** `levels` objects nested inside each other: `{ a: { a: … null } }`. */
function nested(levels: number): unknown {
  let value: unknown = null;
  for (let level = 0; level < levels; level++) value = { a: value };
  return value;
}

function refusal(call: () => unknown): InvalidPayloadError {
  try {
    call();
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidPayloadError);
    expect((error as PromisedError).code).toBe('INVALID_PAYLOAD');
    return error as InvalidPayloadError;
  }
  throw new Error('expected INVALID_PAYLOAD, but the value was accepted');
}

describe('toJsonText', () => {
  it('refuses a payload nested 10,000 levels deep with a typed error, not a RangeError', () => {
    const error = refusal(() => toJsonText(nested(10_000)));
    expect(error.message).toMatch(/nested more than 1000 levels deep/);
    expect(error.path.startsWith('payload.a.a.a')).toBe(true);
    const arrays = refusal(() => toJsonText(JSON.parse(`${'['.repeat(10_000)}${']'.repeat(10_000)}`), 'result'));
    expect(arrays.path.startsWith('result[0][0]')).toBe(true);
    // The message stays readable: a long path is shortened in its middle.
    expect(arrays.message.length).toBeLessThan(400);
  });

  it(`takes ${MAX_JSON_DEPTH} levels, and refuses one more`, () => {
    expect(JSON.parse(toJsonText(nested(MAX_JSON_DEPTH)))).toEqual(nested(MAX_JSON_DEPTH));
    refusal(() => toJsonText(nested(MAX_JSON_DEPTH + 1)));
  });

  it('refuses a toJSON that throws, naming the path and what it threw', () => {
    const payload = { order: { when: { toJSON: () => { throw new Error('clock is broken'); } } } };
    const error = refusal(() => toJsonText(payload));
    expect(error.path).toBe('payload.order.when');
    expect(error.message).toMatch(/payload\.order\.when .*toJSON\(\) threw: clock is broken/);
  });

  it('refuses a toJSON that returns what JSON cannot hold (a BigInt, a function)', () => {
    expect(refusal(() => toJsonText({ n: { toJSON: () => 10n } })).path).toBe('payload.n.toJSON()');
    expect(refusal(() => toJsonText({ n: { toJSON: () => ({ deep: [1, 2n] }) } })).path).toBe('payload.n.toJSON().deep[1]');
    expect(refusal(() => toJsonText([{ toJSON: () => () => 1 }])).path).toBe('payload[0].toJSON()');
  });

  it('refuses a getter that throws, and a proxy whose traps throw', () => {
    const payload = {
      id: 1,
      get secret(): string {
        throw new Error('no access');
      },
    };
    const error = refusal(() => toJsonText(payload, 'result'));
    expect(error.path).toBe('result.secret');
    expect(error.message).toMatch(/reading it threw: no access/);
    const proxy = new Proxy({}, { ownKeys: () => { throw new TypeError('trap'); } });
    expect(refusal(() => toJsonText({ p: proxy })).path).toBe('payload.p');
    const item = new Proxy([1, 2], { get: (target, key) => (key === '1' ? (() => { throw new Error('item'); })() : Reflect.get(target, key)) });
    expect(refusal(() => toJsonText({ list: item })).path).toBe('payload.list[1]');
  });

  it('stores what it checked: a getter is read once, so a value that changes between reads cannot slip through', () => {
    let reads = 0;
    const payload = {
      get n(): unknown {
        reads++;
        return reads === 1 ? 1 : 2n;
      },
    };
    expect(toJsonText(payload)).toBe('{"n":1}');
    expect(reads).toBe(1);
  });

  it('keeps what JSON keeps, as JSON does', () => {
    const when = new Date('2026-01-02T03:04:05.000Z');
    expect(toJsonText({ when, skip: undefined, list: [undefined, 1], nested: { toJSON: (key: string) => `key ${key}` } })).toBe(
      '{"when":"2026-01-02T03:04:05.000Z","list":[null,1],"nested":"key nested"}',
    );
    expect(toJsonText(undefined)).toBe('null');
    expect(toJsonText({ toJSON: () => undefined })).toBe('null');
    expect(toJsonText(Buffer.from('hi'))).toBe('{"type":"Buffer","data":[104,105]}');
    // An own "__proto__" key (JSON.parse makes one) is data, and stays data.
    expect(toJsonText(JSON.parse('{"__proto__":{"x":1},"y":2}'))).toBe('{"__proto__":{"x":1},"y":2}');
    const shared = { s: 1 };
    expect(toJsonText({ a: shared, b: shared })).toBe('{"a":{"s":1},"b":{"s":1}}');
  });
});

describe('at the engine: refused before anything is written', () => {
  let engine: Engine | undefined;
  afterEach(async () => {
    await engine?.stop();
    engine = undefined;
  });

  it.each([
    ['nested 10,000 levels deep', nested(10_000)],
    ['with a toJSON that throws', { when: { toJSON: () => { throw new Error('nope'); } } }],
    ['with a toJSON that returns a BigInt', { when: { toJSON: () => 1n } }],
    ['with a getter that throws', Object.defineProperty({}, 'secret', { enumerable: true, get: () => { throw new Error('nope'); } })],
  ])('enqueue with a payload %s', async (_label, payload) => {
    const file = tempDbPath();
    engine = await createEngine({ database: file, changeCheckIntervalMs: 0 });
    engine.task('work', async () => 'ok');
    await engine.enqueue('work', { n: 1 });
    const before = dumpDb(file);
    await expect(engine.enqueue('work', payload)).rejects.toMatchObject({ code: 'INVALID_PAYLOAD', name: 'InvalidPayloadError' });
    await expect(engine.enqueueMany([{ type: 'work', payload: { fine: true } }, { type: 'work', payload }])).rejects.toMatchObject({ code: 'INVALID_PAYLOAD' });
    expect(dumpDb(file)).toEqual(before);
  });

  it('a handler result that cannot be stored fails that promise with INVALID_PAYLOAD; the worker goes on', async () => {
    engine = await createEngine({ database: tempDbPath(), immediate: true, changeCheckIntervalMs: 0 });
    engine.task('deep', async () => nested(10_000));
    engine.task('throwing', async () => ({ at: { toJSON: () => { throw new Error('nope'); } } }), { retries: 0 });
    engine.task('fine', async () => 'ok');
    for (const type of ['deep', 'throwing']) {
      const record = (await engine.get(await engine.enqueue(type)))!;
      expect(record.status).toBe('failed');
      expect(record.error).toMatchObject({ code: 'INVALID_PAYLOAD' });
    }
    expect((await engine.get(await engine.enqueue('fine')))!.status).toBe('completed');
  });
});

describe('at the command line', () => {
  it('enqueue of JSON nested 10,000 levels deep: exit 2, one line INVALID_PAYLOAD, no file', async () => {
    const dir = tempDir();
    const db = `${dir}/promised.db`;
    const deep = `${'['.repeat(10_000)}${']'.repeat(10_000)}`;
    const result = await runCli(['enqueue', 'echo', deep, '--tasks', tasksModule, '--db', db], { cwd: dir });
    expect(result.code, result.stderr).toBe(2);
    expect(result.errLines).toEqual([expect.stringMatching(/^promised: INVALID_PAYLOAD: value at payload\[0\]\[0\].* is not JSON-serialisable: nested more than 1000 levels deep/)]);
    expect(dumpDb(db)).toBe('no file');
  });
});
