import fs from 'node:fs';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { createEngine } from '../src/index.js';
import { root, runCli, tasksModule } from './fixtures/cli-run.js';
import { dumpDb } from './helpers/db-dump.js';
import { tempDir } from './helpers/temp-db.js';

const fixture = (name: string) => path.join(root, 'test/fixtures', name);

/** A folder with a promised database holding one completed promise. */
async function promisedDb() {
  const dir = tempDir();
  const db = path.join(dir, 'promised.db');
  const engine = await createEngine({ database: db, immediate: true, changeCheckIntervalMs: 0 });
  engine.task('echo', async (payload) => payload);
  await engine.enqueue('echo', { seeded: true });
  await engine.stop();
  return { dir, db };
}

/** Every file in the folder and every row of the database, to prove a refused command wrote nothing. */
function snapshot(dir: string, db: string) {
  const files = fs.readdirSync(dir).sort();
  // -wal and -shm are SQLite's own; their presence is not ours to judge, the rows are.
  return { files: files.filter((name) => !/-(wal|shm)$/.test(name)), rows: dumpDb(db) };
}

/** Runs the command and checks: exit code, exactly one line on stderr (with `pattern`), nothing on stdout, nothing written. */
async function expectRefused(dir: string, db: string, args: string[], pattern: RegExp, code = 2) {
  const before = snapshot(dir, db);
  const result = await runCli(args, { cwd: dir });
  expect(result.code, `exit code of promised ${args.join(' ')}; stderr: ${result.stderr}`).toBe(code);
  expect(result.errLines, 'stderr lines').toHaveLength(1);
  expect(result.errLines[0]).toMatch(/^promised: /);
  expect(result.errLines[0]).toMatch(pattern);
  expect(result.stdout).toBe('');
  expect(snapshot(dir, db)).toEqual(before);
}

describe('bad input: one line on stderr, exit 2, nothing written', () => {
  it.each([
    ['an unknown command', ['frobnicate'], /unknown command 'frobnicate'/],
    ['an unknown flag', ['list', '--frobnicate'], /unknown option '--frobnicate'/],
    ['text that begins with "-" where an argument belongs', ['enqueue', 'echo', '- ', '--tasks', tasksModule], /^promised: INVALID_ARGUMENT: unknown option '- '$/],
    ['a missing argument', ['status'], /missing required argument 'ID'/],
    ['too many arguments', ['status', '1', '2'], /too many arguments/],
    ['JSON that does not parse', ['enqueue', 'echo', '{"file": ', '--tasks', tasksModule], /INVALID_JSON: the payload is not valid JSON/],
    ['a type the module does not define', ['enqueue', 'nope', '{}', '--tasks', tasksModule], /UNKNOWN_TASK_TYPE: unknown task type "nope"/],
    ['a priority that is not a number', ['enqueue', 'echo', '--priority', 'high', '--tasks', tasksModule], /INVALID_ARGUMENT: --priority "high"/],
    ['a priority out of range', ['enqueue', 'echo', '--priority', '5000', '--tasks', tasksModule], /INVALID_ARGUMENT: --priority "5000" is not an integer from -1000 to 1000/],
    ['a delay that is not a duration', ['enqueue', 'echo', '--delay', 'soon', '--tasks', tasksModule], /INVALID_ARGUMENT: --delay "soon" is not a duration/],
    ['a dependency that does not exist', ['enqueue', 'echo', '--depends-on', '999', '--tasks', tasksModule], /UNKNOWN_DEPENDENCY/],
    ['enqueue with no tasks module and no worker', ['enqueue', 'echo', '{}'], /TASKS_MODULE_REQUIRED: .*pass --tasks/],
    ['a tasks module that does not exist', ['enqueue', 'echo', '--tasks', 'missing-tasks.mjs'], /TASKS_MODULE_NOT_FOUND: tasks module missing-tasks.mjs does not exist/],
    ['a tasks module that fails to import', ['enqueue', 'echo', '--tasks', fixture('cli-throws.mjs')], /TASKS_MODULE_FAILED: .*failed to import: this tasks module is broken on purpose/],
    ['a tasks module without a default function', ['enqueue', 'echo', '--tasks', fixture('cli-no-default.mjs')], /TASKS_MODULE_INVALID: .*must default-export a function/],
    ['worker start with a missing tasks module', ['worker', 'start', 'missing-tasks.mjs'], /TASKS_MODULE_NOT_FOUND/],
    ['worker start with a tasks module that fails to import', ['worker', 'start', fixture('cli-throws.mjs')], /TASKS_MODULE_FAILED/],
    ['worker start with a tasks module without a default function', ['worker', 'start', fixture('cli-no-default.mjs')], /TASKS_MODULE_INVALID/],
    ['worker start --foreground with a missing tasks module', ['worker', 'start', 'missing-tasks.mjs', '--foreground'], /TASKS_MODULE_NOT_FOUND/],
    ['worker start with concurrency 0', ['worker', 'start', tasksModule, '--concurrency', '0'], /INVALID_ARGUMENT: --concurrency "0"/],
    ['status of an id that does not exist', ['status', '999'], /NOT_FOUND: no promise with id "999"/],
    ['list with an unknown status', ['list', '--status', 'done'], /INVALID_OPTION: option status = "done"/],
    ['retry of a completed promise', ['retry', '1'], /INVALID_TRANSITION/],
    ['cleanup with a bad duration', ['cleanup', '--older-than', 'a week'], /INVALID_ARGUMENT: --older-than "a week"/],
  ])('%s', async (_label, args, pattern) => {
    const { dir, db } = await promisedDb();
    await expectRefused(dir, db, [...args, '--db', db], pattern);
  });

  it.each([
    ['stats', ['stats']],
    ['status', ['status', '1']],
    ['list', ['list']],
    ['cancel', ['cancel', '1']],
    ['dead-letters', ['dead-letters']],
    ['cleanup', ['cleanup']],
    ['enqueue with an unknown type', ['enqueue', 'nope', '--tasks', tasksModule]],
    ['enqueue with an unknown dependency', ['enqueue', 'echo', '--depends-on', '7', '--tasks', tasksModule]],
  ])('%s on a database path that does not exist creates no file', async (_label, args) => {
    const dir = tempDir();
    const db = path.join(dir, 'typo.db');
    const result = await runCli([...args, '--db', db], { cwd: dir });
    expect(result.code).toBe(2);
    expect(result.errLines).toHaveLength(1);
    expect(result.errLines[0]).toMatch(/DATABASE_NOT_FOUND|UNKNOWN_TASK_TYPE|UNKNOWN_DEPENDENCY/);
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  describe('a database that is not a promised database', () => {
    function foreignDb() {
      const dir = tempDir();
      const db = path.join(dir, 'other.db');
      const raw = new BetterSqlite3(db);
      raw.exec(`create table invoices (id integer primary key, total real); insert into invoices (total) values (12.5);`);
      raw.close();
      return { dir, db };
    }

    it.each([
      ['stats', ['stats']],
      ['list', ['list']],
      ['enqueue', ['enqueue', 'echo', '{}', '--tasks', tasksModule]],
      ['worker start', ['worker', 'start', tasksModule]],
      ['worker status', ['worker', 'status']],
    ])('%s refuses it', async (_label, args) => {
      const { dir, db } = foreignDb();
      await expectRefused(dir, db, [...args, '--db', db], /DATABASE_NOT_PROMISED: .*is not a promised database/);
    });

    it('a file that is not SQLite at all is refused', async () => {
      const dir = tempDir();
      const db = path.join(dir, 'notes.db');
      fs.writeFileSync(db, 'these are my notes, not a database\n'.repeat(100));
      const before = fs.readFileSync(db);
      const result = await runCli(['enqueue', 'echo', '{}', '--tasks', tasksModule, '--db', db], { cwd: dir });
      expect(result.code).toBe(2);
      expect(result.errLines).toEqual([expect.stringMatching(/^promised: DATABASE_NOT_PROMISED: /)]);
      expect(fs.readFileSync(db)).toEqual(before);
      expect(fs.readdirSync(dir)).toEqual(['notes.db']);
    });

    it('a database migrated by a newer promised is refused', async () => {
      const { dir, db } = await promisedDb();
      const raw = new BetterSqlite3(db);
      raw.prepare(`insert into promised_migration (name, timestamp) values ('9999_from_the_future', ?)`).run(new Date().toISOString());
      raw.close();
      for (const args of [['stats'], ['enqueue', 'echo', '{}', '--tasks', tasksModule], ['worker', 'start', tasksModule]]) {
        await expectRefused(dir, db, [...args, '--db', db], /DATABASE_SCHEMA_TOO_NEW: .*upgrade promised/);
      }
    });
  });
});
