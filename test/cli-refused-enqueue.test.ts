import fs from 'node:fs';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { root, runCli, tasksModule } from './fixtures/cli-run.js';
import { kill, spawnFixture } from './helpers/child.js';
import { tempDir } from './helpers/temp-db.js';
import { until } from './helpers/wait.js';

// A refused `promised enqueue` on a --db that does not exist yet must refuse before it creates
// anything, and must never delete a database: another process may have created the file and
// committed work to it in the meantime.

const gatedTasks = path.join(root, 'test/fixtures/cli-tasks-gated.mjs');
const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
});

const REFUSED: Array<[string, string[], RegExp]> = [
  ['an unknown type', ['enqueue', 'nope', '{}'], /UNKNOWN_TASK_TYPE/],
  ['an unknown dependency', ['enqueue', 'echo', '{}', '--depends-on', '999999'], /UNKNOWN_DEPENDENCY/],
  ['two unknown dependencies', ['enqueue', 'echo', '--depends-on', '888888', '999999'], /UNKNOWN_DEPENDENCY/],
  ['an unknown type with a key', ['enqueue', 'nope', '{"a":1}', '--key', 'k'], /UNKNOWN_TASK_TYPE/],
  ['an unknown type with a delay', ['enqueue', 'nope', '--delay', '5s'], /UNKNOWN_TASK_TYPE/],
];

describe('a refused enqueue on a --db that does not exist', () => {
  it('while another process creates that database and writes to it: every acknowledged promise of the writer stays', async () => {
    for (let round = 1; round <= 2; round++) {
      const dir = tempDir();
      const db = path.join(dir, 'shared.db');
      const gate = path.join(dir, 'gate');
      const stop = path.join(dir, 'stop');
      // Five refused commands, each held in its tasks module's registration (after it looked
      // for the file and found none) until the writer has created the file and committed.
      const refused = REFUSED.map(([, args]) => runCli([...args, '--tasks', gatedTasks, '--db', db], { cwd: dir, env: { PROMISED_TEST_GATE: gate } }));
      await until(() => fs.readdirSync(dir).filter((name) => name.endsWith('.waiting')).length === REFUSED.length, 30_000, 'the five commands to wait');

      const writer = spawnFixture('steady-writer.ts', [db, gate, stop, '10']);
      cleanups.push(() => kill(writer.child, 'SIGKILL'));
      const results = await Promise.all(refused);
      results.forEach((result, index) => {
        expect(result.code, `${REFUSED[index]![0]}: ${result.stderr}`).toBe(2);
        expect(result.errLines).toEqual([expect.stringMatching(REFUSED[index]![2])]);
      });
      // Some more commits after the refusals, then the writer stops and closes the database.
      const afterRefusals = writer.lines.length;
      await until(() => writer.lines.length >= afterRefusals + 5, 20_000, 'more commits by the writer');
      fs.writeFileSync(stop, '');
      await writer.waitForLine('stopped');
      expect(await writer.exited).toBe(0);

      const acknowledged = writer.lines.filter((line) => line !== 'stopped');
      expect(acknowledged.length).toBeGreaterThanOrEqual(15);
      expect(fs.existsSync(db), `round ${round}: the database file is still there`).toBe(true);
      const reader = new BetterSqlite3(db, { readonly: true });
      try {
        const stored = (reader.prepare('select id from promises order by id').pluck().all() as number[]).map(String);
        expect(stored, `round ${round}: every acknowledged promise is stored`).toEqual(acknowledged);
      } finally {
        reader.close();
      }
    }
  });

  it.each(REFUSED)('%s creates nothing: no file, no -wal or -shm', async (_label, args, pattern) => {
    const dir = tempDir();
    const db = path.join(dir, 'typo.db');
    const result = await runCli([...args, '--tasks', tasksModule, '--db', db], { cwd: dir });
    expect(result.code).toBe(2);
    expect(result.errLines).toEqual([expect.stringMatching(pattern)]);
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('through a dangling symlink: the symlink stays as it was and nothing is created where it points', async () => {
    const dir = tempDir();
    const link = path.join(dir, 'promised.db');
    const target = path.join(dir, 'data', 'real.db');
    fs.mkdirSync(path.dirname(target));
    fs.symlinkSync(target, link);
    for (const [label, args, pattern] of REFUSED) {
      const result = await runCli([...args, '--tasks', tasksModule, '--db', link], { cwd: dir });
      expect(result.code, label).toBe(2);
      expect(result.errLines).toEqual([expect.stringMatching(pattern)]);
      expect(fs.lstatSync(link).isSymbolicLink(), `${label}: the symlink is still there`).toBe(true);
      expect(fs.readlinkSync(link)).toBe(target);
      expect(fs.readdirSync(path.dirname(target)), `${label}: nothing where the symlink points`).toEqual([]);
      expect(fs.readdirSync(dir)).toEqual(['data', 'promised.db']);
    }
    // An accepted enqueue creates the database where the symlink points.
    const accepted = await runCli(['enqueue', 'echo', '{}', '--tasks', tasksModule, '--db', link], { cwd: dir });
    expect(accepted.code, accepted.stderr).toBe(0);
    expect(fs.existsSync(target)).toBe(true);
    expect(fs.lstatSync(link).isSymbolicLink()).toBe(true);
  });
});
