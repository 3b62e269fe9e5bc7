import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli, spawnCli, stopChild, tasksModule } from './fixtures/cli-run.js';
import { tempDir } from './helpers/temp-db.js';
import { until } from './helpers/wait.js';

// Ctrl-C (SIGINT) on the long-running commands: a real signal to the real command.

const children: Array<ReturnType<typeof spawnCli>> = [];
afterEach(() => {
  for (const run of children.splice(0)) stopChild(run.child);
});

function lines(file: string): string[] {
  return fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
}

async function statusOf(db: string, id: string): Promise<{ status: string; attempts: number }> {
  const result = await runCli(['status', id, '--json', '--db', db]);
  expect(result.code).toBe(0);
  return JSON.parse(result.stdout) as { status: string; attempts: number };
}

function startForegroundWorker(db: string) {
  const worker = spawnCli(['worker', 'start', tasksModule, '--foreground', '--db', db]);
  children.push(worker);
  return worker;
}

describe('SIGINT on long-running commands', () => {
  it('a foreground worker finishes its running handler, commits it and exits 0', async () => {
    const dir = tempDir();
    const db = path.join(dir, 'promised.db');
    const side = path.join(dir, 'side-effects.txt');
    const worker = startForegroundWorker(db);
    await until(() => fs.existsSync(`${db}.worker.pid`), 15_000, 'the worker to start');
    const enqueued = await runCli(['enqueue', 'slow', JSON.stringify({ file: side, ms: 1_500 }), '--db', db]);
    const id = enqueued.stdout.trim();
    await until(() => lines(side).includes(`started ${id}`), 15_000, 'the handler to start');

    worker.child.kill('SIGINT');
    expect(await worker.exited).toBe(0);
    // The handler was allowed to finish, and its outcome is on disk: no second run needed.
    expect(lines(side)).toEqual([`started ${id}`, `finished ${id}`]);
    expect(await statusOf(db, id)).toMatchObject({ status: 'completed', attempts: 1 });
    expect(fs.existsSync(`${db}.worker.pid`)).toBe(false);
  });

  it('enqueue --wait interrupted exits 130 at once, and the promise it enqueued is kept for the worker', async () => {
    const dir = tempDir();
    const db = path.join(dir, 'promised.db');
    const side = path.join(dir, 'side-effects.txt');
    startForegroundWorker(db);
    await until(() => fs.existsSync(`${db}.worker.pid`), 15_000, 'the worker to start');
    const waiting = spawnCli(['enqueue', 'slow', JSON.stringify({ file: side, ms: 4_000 }), '--wait', '--db', db]);
    children.push(waiting);
    await until(() => lines(side).length === 1, 15_000, 'the worker to start the handler');
    const id = lines(side)[0]!.split(' ')[1]!;

    waiting.child.kill('SIGINT');
    expect(await waiting.exited).toBe(130);
    // It did not wait for the handler to finish first.
    expect(lines(side)).toEqual([`started ${id}`]);
    // Interrupting the waiter does not touch the promise: the worker completes it.
    await until(async () => (await statusOf(db, id)).status === 'completed', 15_000, 'the worker to complete it');
    expect(lines(side)).toEqual([`started ${id}`, `finished ${id}`]);
  });
});
