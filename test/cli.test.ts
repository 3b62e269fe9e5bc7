import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isRunning, killWorkersIn, runCli, tasksModule, type CliResult } from './fixtures/cli-run.js';
import { tempDir } from './helpers/temp-db.js';
import { until } from './helpers/wait.js';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) killWorkersIn(dir);
});

function workspace() {
  const dir = tempDir();
  dirs.push(dir);
  const db = path.join(dir, 'promised.db');
  const cli = (...args: string[]) => runCli([...args, '--db', db], { cwd: dir });
  return { dir, db, cli, side: path.join(dir, 'side-effects.txt') };
}

function json<T = any>(result: CliResult): T {
  expect(result.stderr, 'stderr').toBe('');
  expect(result.code, 'exit code').toBe(0);
  return JSON.parse(result.stdout) as T;
}

function sideEffects(file: string): string[] {
  return fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
}

async function statusOf(cli: (...args: string[]) => Promise<CliResult>, id: string) {
  return json<{ status: string; attempts: number; result: unknown; error: { code: string } | null }>(await cli('status', id, '--json'));
}

describe('promised worker + enqueue (the real command, as child processes)', () => {
  it('a detached worker runs what the CLI enqueues; status, list and stats report it; a second worker is refused', async () => {
    const { db, cli } = workspace();
    const started = await cli('worker', 'start', tasksModule);
    expect(started.stderr).toBe('');
    expect(started.code).toBe(0);
    const pid = Number(/worker started \(pid (\d+)\)/.exec(started.stdout)?.[1]);
    expect(pid).toBeGreaterThan(0);
    expect(fs.existsSync(`${db}.worker.pid`)).toBe(true);
    expect(fs.existsSync(`${db}.worker.log`)).toBe(true);

    const second = await cli('worker', 'start', tasksModule);
    expect(second.code).toBe(1);
    expect(second.errLines).toHaveLength(1);
    expect(second.errLines[0]).toMatch(new RegExp(`already running .*pid ${pid}`));

    // No --tasks: the type is checked against the running worker's module, and the worker runs it.
    const enqueued = await cli('enqueue', 'echo', '{"n":1}');
    expect(enqueued.stderr).toBe('');
    expect(enqueued.code).toBe(0);
    const id = enqueued.stdout.trim();
    expect(id).toMatch(/^\d+$/);
    await until(async () => (await statusOf(cli, id)).status === 'completed', 15_000, 'the worker to complete the promise');
    expect(await statusOf(cli, id)).toMatchObject({ status: 'completed', attempts: 1, result: { n: 1 } });

    const human = await cli('status', id);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/status\s+completed/);

    const waited = await cli('enqueue', 'echo', '{"n":2}', '--wait');
    expect(waited.stderr).toBe('');
    expect(waited.code).toBe(0);
    const [waitedId, result] = waited.stdout.trim().split('\n');
    expect(waitedId).toMatch(/^\d+$/);
    expect(JSON.parse(result!)).toEqual({ n: 2 });

    const failed = await cli('enqueue', 'fail', '--wait');
    expect(failed.code).toBe(1);
    expect(failed.errLines).toEqual([expect.stringMatching(/^promised: promise \d+ failed: HANDLER_ERROR: boom$/)]);

    const status = json(await cli('worker', 'status', '--json'));
    expect(status).toMatchObject({ running: true, workers: [{ pid, concurrency: 4 }], counts: { completed: 2, failed: 1, pending: 0, in_progress: 0 } });
    expect((await cli('worker', 'status')).stdout).toMatch(new RegExp(`worker: running, pid ${pid}, up `));
    expect(json<unknown[]>(await cli('list', '--json'))).toHaveLength(3);
    expect(json<unknown[]>(await cli('list', '--status', 'failed', '--json'))).toHaveLength(1);
    expect(json(await cli('stats', '--json'))).toMatchObject({ completed: 2, failed: 1 });

    const stopped = await cli('worker', 'stop');
    expect(stopped.stderr).toBe('');
    expect(stopped.code).toBe(0);
    expect(stopped.stdout).toMatch(new RegExp(`worker stopped \\(pid ${pid}\\)`));
    expect(fs.existsSync(`${db}.worker.pid`)).toBe(false);
    expect(isRunning(pid)).toBe(false);
    expect(json(await cli('worker', 'status', '--json'))).toMatchObject({ running: false, workers: [] });
    expect((await cli('worker', 'stop')).stdout).toMatch(/no worker is running/);
  });

  it('worker stop waits for a running handler, and its completion is committed', async () => {
    const { cli, side } = workspace();
    expect((await cli('worker', 'start', tasksModule)).code).toBe(0);
    const id = (await cli('enqueue', 'slow', JSON.stringify({ file: side, ms: 1_500 }))).stdout.trim();
    await until(() => sideEffects(side).includes(`started ${id}`), 15_000, 'the handler to start');

    const stopped = await cli('worker', 'stop');
    expect(stopped.code).toBe(0);
    expect(sideEffects(side)).toEqual([`started ${id}`, `finished ${id}`]);
    expect(await statusOf(cli, id)).toMatchObject({ status: 'completed', attempts: 1, result: { slept: 1_500 } });
  });

  it('a handler still running when the stop timeout passes is handed back, and the next worker runs it', async () => {
    const { cli, side } = workspace();
    expect((await cli('worker', 'start', tasksModule, '--stop-timeout', '100ms')).code).toBe(0);
    const id = (await cli('enqueue', 'slow', JSON.stringify({ file: side, ms: 1_500 }))).stdout.trim();
    await until(() => sideEffects(side).includes(`started ${id}`), 15_000, 'the handler to start');

    expect((await cli('worker', 'stop')).code).toBe(0);
    expect(await statusOf(cli, id)).toMatchObject({ status: 'pending' });

    expect((await cli('worker', 'start', tasksModule)).code).toBe(0);
    await until(async () => (await statusOf(cli, id)).status === 'completed', 15_000, 'the next worker to complete it');
    expect((await cli('worker', 'stop')).code).toBe(0);
    expect(sideEffects(side).filter((line) => line === `started ${id}`)).toHaveLength(2);
  });

  it('with --tasks and no live worker, enqueue runs the promise here, synchronously, and says so', async () => {
    const { db, cli } = workspace();
    const ran = await cli('enqueue', 'echo', '{"x":1}', '--tasks', tasksModule);
    expect(ran.code).toBe(0);
    const id = ran.stdout.trim();
    expect(id).toMatch(/^\d+$/);
    expect(ran.errLines).toEqual([`promised: no worker is running for ${db}; ran promise ${id} here, synchronously: completed`]);
    // Finished before the command returned: no worker ever ran.
    expect(await statusOf(cli, id)).toMatchObject({ status: 'completed', attempts: 1, result: { x: 1 } });
    expect(fs.existsSync(`${db}.worker.pid`)).toBe(false);

    const waited = await cli('enqueue', 'echo', '{"x":2}', '--tasks', tasksModule, '--wait', '--json');
    expect(waited.code).toBe(0);
    expect(JSON.parse(waited.stdout)).toMatchObject({ status: 'completed', result: { x: 2 }, ranHere: true });

    const failed = await cli('enqueue', 'fail', '--tasks', tasksModule, '--wait');
    expect(failed.code).toBe(1);
    expect(failed.errLines.at(-1)).toMatch(/promise \d+ failed: HANDLER_ERROR: boom/);
  });

  it('cancel, retry, dead-letters and cleanup', async () => {
    const { cli } = workspace();
    const failedId = (await cli('enqueue', 'fail', '--tasks', tasksModule)).stdout.trim();
    expect(await statusOf(cli, failedId)).toMatchObject({ status: 'failed', error: { code: 'HANDLER_ERROR' } });
    const letters = json<Array<{ promiseId: string; error: { code: string } }>>(await cli('dead-letters', '--json'));
    expect(letters).toEqual([expect.objectContaining({ promiseId: failedId, error: expect.objectContaining({ code: 'HANDLER_ERROR' }) })]);
    expect((await cli('dead-letters')).stdout).toContain('HANDLER_ERROR: boom');

    // Back to pending; with no worker running it waits there, so it can be cancelled.
    expect(json(await cli('retry', failedId, '--json'))).toMatchObject({ id: failedId, status: 'pending' });
    expect(json(await cli('dead-letters', '--json'))).toEqual([]);
    expect(json(await cli('cancel', failedId, '--json'))).toMatchObject({ status: 'failed', error: { code: 'CANCELLED' } });
    expect(json(await cli('dead-letters', '--clear', '--json'))).toEqual({ removed: 1 });

    await cli('enqueue', 'echo', '{}', '--tasks', tasksModule);
    expect(json(await cli('cleanup', '--json'))).toEqual({ removed: 0 });
    expect(json(await cli('cleanup', '--older-than', '0', '--json'))).toEqual({ removed: 2 });
    expect(json<unknown[]>(await cli('list', '--json'))).toEqual([]);
  });
});
