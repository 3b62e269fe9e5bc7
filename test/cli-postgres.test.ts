import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { isRunning, killWorkersIn, runCli, tasksModule, type CliResult } from './fixtures/cli-run.js';
import { executeSql } from './helpers/backends.js';
import { createFreshDatabase } from './helpers/postgres.js';
import { tempDir } from './helpers/temp-db.js';
import { until } from './helpers/wait.js';

// The real `promised` command (dist/cli/main.js) as child processes, with `--db postgres://…`
// on the throwaway server of the test run: every command the contract lists, a detached worker
// that runs what the CLI enqueued, and the refusals of a database that is not a promised one.

const adminUrl = inject('postgresAdminUrl');
if (!adminUrl) console.warn(`PostgreSQL CLI tests skipped: ${inject('postgresSkipReason')}`);

/** Put into every URL: trust authentication ignores it, and it must never be shown or written. */
const PASSWORD = 'pw-SECRET-4711';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) killWorkersIn(dir);
});

/** A fresh database on the test server, its URL carrying PASSWORD, and a folder to run the CLI in. */
async function workspace() {
  const url = new URL(await createFreshDatabase(adminUrl!));
  url.password = PASSWORD;
  const db = url.toString();
  const dir = tempDir();
  dirs.push(dir);
  const outputs: CliResult[] = [];
  const cli = async (...args: string[]) => {
    const result = await runCli([...args, '--db', db], { cwd: dir });
    outputs.push(result);
    return result;
  };
  return { db, dir, cli, outputs, side: path.join(dir, 'side-effects.txt') };
}

function json<T = any>(result: CliResult): T {
  expect(result.stderr, 'stderr').toBe('');
  expect(result.code, 'exit code').toBe(0);
  return JSON.parse(result.stdout) as T;
}

function refusal(result: CliResult, code: string): void {
  expect(result.code, `exit code; stderr: ${result.stderr}`).toBe(2);
  expect(result.stdout).toBe('');
  expect(result.errLines).toHaveLength(1);
  expect(result.errLines[0]).toMatch(new RegExp(`^promised: ${code}: `));
}

/** The tables in the database's public schema, read with a connection of our own. */
async function tablesOf(url: string): Promise<string[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ name: string }>(`select table_name as name from information_schema.tables where table_schema = 'public' order by 1`);
    return rows.map((row) => row.name);
  } finally {
    await client.end();
  }
}

/** Every file under `dir`, recursively, with its content. */
function filesIn(dir: string): Array<{ file: string; content: string }> {
  return fs.readdirSync(dir, { recursive: true, withFileTypes: true }).flatMap((entry) => {
    if (!entry.isFile()) return [];
    const file = path.join(entry.parentPath ?? (entry as unknown as { path: string }).path, entry.name);
    return [{ file, content: fs.readFileSync(file, 'utf8') }];
  });
}

function expectNoPassword(outputs: CliResult[], dir: string): void {
  for (const { stdout, stderr } of outputs) expect(`${stdout}\n${stderr}`).not.toContain(PASSWORD);
  for (const { file, content } of filesIn(dir)) {
    expect(file).not.toContain(PASSWORD);
    expect(content, file).not.toContain(PASSWORD);
  }
}

describe.skipIf(!adminUrl)('promised --db postgres://… (the real command, as child processes)', () => {
  it('every command works on a PostgreSQL database; a detached worker runs what the CLI enqueued', async () => {
    const { db, dir, cli, outputs, side } = await workspace();
    const { host, port, pathname } = new URL(db);
    const base = path.join(dir, `promised-${host.replace(/:\d+$/, '')}-${port}-${pathname.slice(1)}`);
    const pidFile = `${base}.worker.pid`;
    const logFile = `${base}.worker.log`;

    // No worker yet: with --tasks the promise runs here; this creates the tables.
    const ranHere = await cli('enqueue', 'echo', '{"n":1}', '--tasks', tasksModule, '--json');
    expect(ranHere.code).toBe(0);
    expect(ranHere.errLines).toEqual([expect.stringMatching(/^promised: no worker is running for postgres:\/\/postgres@127\.0\.0\.1:\d+\/\w+ on this host; ran promise 1 here, synchronously: completed$/)]);
    const first = JSON.parse(ranHere.stdout) as { id: string; status: string; ranHere: boolean };
    expect(first).toMatchObject({ id: '1', status: 'completed', ranHere: true });
    expect(await tablesOf(db)).toContain('promises');

    // A detached worker; its PID and log files in the current directory, named after the database.
    const started = await cli('worker', 'start', tasksModule);
    expect(started.stderr).toBe('');
    expect(started.code).toBe(0);
    const pid = Number(/worker started \(pid (\d+)\)/.exec(started.stdout)?.[1]);
    expect(pid).toBeGreaterThan(0);
    expect(fs.existsSync(pidFile)).toBe(true);
    expect(fs.existsSync(logFile)).toBe(true);
    const record = JSON.parse(fs.readFileSync(pidFile, 'utf8')) as { pid: number; database: string };
    expect(record).toMatchObject({ pid, database: db.replace(`:${PASSWORD}`, '') });
    // The URL reached the worker through its environment, not through its command line (ps).
    expect(fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8')).not.toContain('postgres://');
    // No SQLite file was made out of the URL.
    expect(fs.readdirSync(dir).filter((name) => name.startsWith('postgres'))).toEqual([]);

    // One worker per PID file, as on SQLite.
    const second = await cli('worker', 'start', tasksModule);
    expect(second.code).toBe(1);
    expect(second.errLines).toHaveLength(1);
    expect(second.errLines[0]).toMatch(new RegExp(`^promised: WORKER_RUNNING: .*pid ${pid}`));

    // No --tasks: the module is the running worker's (found through the default PID file), and
    // the worker runs it.
    const enqueued = json<{ id: string; status: string; ranHere: boolean }>(await cli('enqueue', 'append', JSON.stringify({ file: side }), '--json'));
    expect(enqueued).toMatchObject({ status: 'enqueued', ranHere: false });
    const statusOf = async (id: string) => json<{ status: string; attempts: number; result: unknown; error: { code: string } | null }>(await cli('status', id, '--json'));
    await until(async () => (await statusOf(enqueued.id)).status === 'completed', 20_000, 'the worker to complete the promise');
    expect(fs.readFileSync(side, 'utf8').trim()).toBe(`${enqueued.id} ${pid}`);
    expect((await cli('status', enqueued.id)).stdout).toMatch(/completed/);

    // A failure: dead letter, retry (the worker runs it again), and it fails again.
    const failing = json<{ id: string }>(await cli('enqueue', 'fail', '--json'));
    await until(async () => (await statusOf(failing.id)).status === 'failed', 20_000, 'the failing promise to fail');
    const letters = json<Array<{ promiseId: string; type: string; failedAt: string }>>(await cli('dead-letters', '--json'));
    expect(letters).toEqual([expect.objectContaining({ promiseId: failing.id, type: 'fail' })]);
    const retried = json<{ id: string; status: string }>(await cli('retry', failing.id, '--json'));
    // Read after the retry's commit: the worker, woken by NOTIFY, may already have claimed it (or failed it again).
    expect(retried.id).toBe(failing.id);
    expect(['pending', 'in_progress', 'failed']).toContain(retried.status);
    // It ran again and failed again: a new dead letter, written after the first one.
    const deadAgain = async () => json<Array<{ promiseId: string; failedAt: string }>>(await cli('dead-letters', '--json'));
    await until(async () => (await deadAgain()).some((letter) => letter.promiseId === failing.id && Date.parse(letter.failedAt) > Date.parse(letters[0]!.failedAt)), 20_000, 'the retried promise to fail again');
    expect((await statusOf(failing.id)).status).toBe('failed');

    // Cancel a delayed promise before it runs.
    const delayed = json<{ id: string }>(await cli('enqueue', 'echo', '{"n":3}', '--delay', '1h', '--json'));
    const cancelled = json<{ id: string; status: string; error: { code: string } }>(await cli('cancel', delayed.id, '--json'));
    expect(cancelled).toMatchObject({ id: delayed.id, status: 'failed', error: { code: 'CANCELLED' } });

    const list = json<Array<{ id: string; status: string }>>(await cli('list', '--json'));
    expect(list.map((r) => r.id).sort()).toEqual([first.id, enqueued.id, failing.id, delayed.id].sort());
    expect((await cli('list', '--status', 'failed')).stdout).toContain('fail');
    const stats = json<{ completed: number; failed: number; pending: number }>(await cli('stats', '--json'));
    expect(stats).toMatchObject({ completed: 2, failed: 2, pending: 0 });
    expect((await cli('stats')).stdout).toMatch(/completed 2/);

    const status = json<{ running: boolean; database: string; workers: Array<{ pid: number; pidFile: string; logFile: string }>; counts: { completed: number } }>(
      await cli('worker', 'status', '--json'),
    );
    expect(status).toMatchObject({ running: true, database: record.database, workers: [{ pid, pidFile, logFile }], counts: { completed: 2 } });
    expect((await cli('worker', 'status')).stdout).toMatch(new RegExp(`worker: running, pid ${pid}`));

    expect(json<Array<{ promiseId: string }>>(await cli('dead-letters', '--json')).map((l) => l.promiseId)).toContain(failing.id);
    expect(json<{ removed: number }>(await cli('dead-letters', '--clear', '--json')).removed).toBeGreaterThanOrEqual(1);
    expect(json<unknown[]>(await cli('dead-letters', '--json'))).toEqual([]);
    expect(json<{ removed: number }>(await cli('cleanup', '--older-than', '0', '--json'))).toEqual({ removed: 4 });
    expect(json<unknown[]>(await cli('list', '--json'))).toEqual([]);

    const stopped = await cli('worker', 'stop');
    expect(stopped.stderr).toBe('');
    expect(stopped.code).toBe(0);
    expect(stopped.stdout).toMatch(new RegExp(`worker stopped \\(pid ${pid}\\)`));
    expect(isRunning(pid)).toBe(false);
    expect(fs.existsSync(pidFile)).toBe(false);
    expect(json<{ running: boolean; counts: unknown }>(await cli('worker', 'status', '--json'))).toMatchObject({ running: false, counts: { completed: 0 } });
    expect(json<{ stopped: number[] }>(await cli('worker', 'stop', '--json'))).toEqual({ stopped: [] });

    expectNoPassword(outputs, dir);
  });

  it('a reading command on an empty, a foreign or a missing PostgreSQL database is refused with one line (exit 2) and writes nothing', async () => {
    const { db, dir, cli, outputs } = await workspace();
    const reading: string[][] = [['status', '1'], ['list'], ['stats'], ['cancel', '1'], ['retry', '1'], ['dead-letters'], ['dead-letters', '--clear'], ['cleanup'], ['dashboard', '--port', '0']];

    // Empty: no tables. Refused, and still no tables.
    for (const args of reading) refusal(await cli(...args), 'DATABASE_NOT_FOUND');
    expect(outputs[0]!.errLines[0]).toMatch(/no promised database at postgres:\/\/postgres@127\.0\.0\.1:\d+\/\w+: the database holds no tables/);
    expect(await tablesOf(db)).toEqual([]);
    // worker status reads it as "no database yet", without creating one.
    const status = json<{ running: boolean; counts: unknown }>(await cli('worker', 'status', '--json'));
    expect(status).toMatchObject({ running: false, counts: null });
    expect(await tablesOf(db)).toEqual([]);

    // Someone else's database: refused by name, nothing added.
    await executeSql(db, 'create table users (id integer primary key, name text)');
    for (const args of reading) refusal(await cli(...args), 'DATABASE_NOT_PROMISED');
    expect(outputs.at(-1)!.errLines[0]).toMatch(/holds tables \(users\) but is not a promised database/);
    refusal(await cli('worker', 'status'), 'DATABASE_NOT_PROMISED');
    refusal(await cli('worker', 'start', tasksModule), 'DATABASE_NOT_PROMISED');
    expect(await tablesOf(db)).toEqual(['users']);

    // A database the server does not have.
    const missing = new URL(db);
    missing.pathname = '/no_such_database';
    const result = await runCli(['stats', '--db', missing.toString()], { cwd: dir });
    outputs.push(result);
    refusal(result, 'DATABASE_NOT_FOUND');
    expect(result.errLines[0]).toMatch(/the server has no database of that name/);

    // A server that does not answer is a failure at run time (exit 1), still one line.
    const closed = new URL(db);
    closed.port = '1';
    const unreachable = await runCli(['stats', '--db', closed.toString()], { cwd: dir });
    outputs.push(unreachable);
    expect(unreachable.code).toBe(1);
    expect(unreachable.errLines).toHaveLength(1);
    expect(unreachable.errLines[0]).toMatch(/^promised: DATABASE_UNAVAILABLE: /);

    expect(fs.readdirSync(dir)).toEqual([]);
    expectNoPassword(outputs, dir);
  });
});
