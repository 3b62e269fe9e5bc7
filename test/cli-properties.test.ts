import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createEngine } from '../src/index.js';
import { runCli, tasksModule } from './fixtures/cli-run.js';
import { dumpDb } from './helpers/db-dump.js';
import { tempDir } from './helpers/temp-db.js';

describe('property: the CLI either does what was asked or refuses in one line, writing nothing', () => {
  it('holds for random payload text, types and options given to `promised enqueue`', async () => {
    const dir = tempDir();
    const db = path.join(dir, 'promised.db');
    const engine = await createEngine({ database: db, immediate: true, changeCheckIntervalMs: 0 });
    engine.task('echo', async (payload) => payload);
    await engine.enqueue('echo', { seeded: true });
    await engine.stop();

    const payloadText = fc.oneof(fc.json(), fc.string({ maxLength: 12 }), fc.constantFrom('{', '{"a":', 'null', '[1,2', '"x"', '1e999', 'NaN'));
    const type = fc.constantFrom('echo', 'noop', 'nope', '');
    const option = fc.oneof(
      fc.constant<string[]>([]),
      fc.tuple(fc.constant('--priority'), fc.oneof(fc.integer({ min: -3000, max: 3000 }).map(String), fc.constantFrom('high', '1.5', ''))).map((a) => [...a]),
      fc.tuple(fc.constant('--delay'), fc.constantFrom('0', '5s', '-1', 'soon', '2d', '1000')).map((a) => [...a]),
      fc.tuple(fc.constant('--depends-on'), fc.constantFrom('1', '999', 'abc')).map((a) => [...a]),
    );
    let cases = 0;
    await fc.assert(
      fc.asyncProperty(type, payloadText, option, async (t, text, extra) => {
        cases++;
        const before = dumpDb(db);
        const result = await runCli(['--db', db, 'enqueue', t, text, ...extra, '--tasks', tasksModule], { cwd: dir });
        if (result.code === 0) {
          expect(result.stdout.trim()).toMatch(/^\d+$/);
        } else {
          expect(result.code, result.stderr).toBe(2);
          expect(result.errLines).toHaveLength(1);
          expect(result.errLines[0]).toMatch(/^promised: [A-Z_]+: /);
          expect(dumpDb(db)).toEqual(before);
        }
      }),
      { numRuns: 25 },
    );
    console.log(`CLI property cases tried: ${cases}`);
  }, 120_000);
});
