import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { killWorkersIn, runCli, spawnCli, stopChild, tasksModule } from './fixtures/cli-run.js';
import { tempDir } from './helpers/temp-db.js';
import { until } from './helpers/wait.js';

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0).reverse()) cleanup();
});

function workspace() {
  const dir = tempDir();
  cleanups.push(() => killWorkersIn(dir));
  const db = path.join(dir, 'promised.db');
  const cli = (...args: string[]) => runCli([...args, '--db', db], { cwd: dir });
  return { dir, db, pidFile: `${db}.worker.pid`, cli };
}

/** A PID file as a worker writes it, naming `pid` with a start time that is not that process's. */
function writeForeignPidFile(file: string, pid: number, db: string) {
  const record = { pid, startTime: '1', token: 'not-a-live-worker', host: os.hostname(), database: db, tasks: tasksModule, logFile: null, concurrency: 4, stopTimeoutMs: 30_000, startedAt: Date.now() - 60_000 };
  fs.writeFileSync(file, JSON.stringify(record));
}

async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '0']);
  await new Promise((resolve) => child.on('exit', resolve));
  return child.pid!;
}

describe('stale PID files', () => {
  it('naming a process that is gone: reported, removed, and a worker starts', async () => {
    const { db, pidFile, cli } = workspace();
    const pid = await deadPid();
    writeForeignPidFile(pidFile, pid, db);

    const status = await cli('worker', 'status');
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/worker: not running/);
    expect(status.errLines).toEqual([`promised: removed stale PID file ${pidFile} (process ${pid} is not running)`]);
    expect(fs.existsSync(pidFile)).toBe(false);

    writeForeignPidFile(pidFile, pid, db);
    const started = await cli('worker', 'start', tasksModule);
    expect(started.code).toBe(0);
    expect(started.errLines).toEqual([expect.stringContaining(`process ${pid} is not running`)]);
    expect(JSON.parse(fs.readFileSync(pidFile, 'utf8')).pid).not.toBe(pid);
    expect((await cli('worker', 'stop')).code).toBe(0);
  });

  it('naming a live process that is not the worker (the pid was reused): removed, and that process is left alone', async () => {
    const { db, pidFile, cli } = workspace();
    const sleeper = spawn('sleep', ['60']);
    cleanups.push(() => sleeper.kill('SIGKILL'));
    await new Promise((resolve) => sleeper.once('spawn', resolve));
    writeForeignPidFile(pidFile, sleeper.pid!, db);

    // enqueue must not take it for a live worker: it runs the promise here.
    const enqueued = await cli('enqueue', 'echo', '{}', '--tasks', tasksModule);
    expect(enqueued.code).toBe(0);
    expect(enqueued.errLines[0]).toBe(`promised: removed stale PID file ${pidFile} (pid ${sleeper.pid} now belongs to another program)`);
    expect(enqueued.errLines[1]).toMatch(/ran promise \d+ here, synchronously: completed/);

    writeForeignPidFile(pidFile, sleeper.pid!, db);
    const stopped = await cli('worker', 'stop');
    expect(stopped.code).toBe(0);
    expect(stopped.stdout).toMatch(/no worker is running/);
    expect(stopped.errLines).toEqual([expect.stringContaining('now belongs to another program')]);
    expect(sleeper.exitCode).toBeNull();
    expect(sleeper.signalCode).toBeNull();

    writeForeignPidFile(pidFile, sleeper.pid!, db);
    expect((await cli('worker', 'start', tasksModule)).code).toBe(0);
    expect((await cli('worker', 'stop')).code).toBe(0);
    expect(sleeper.signalCode).toBeNull();
  });

  it('recording no start time and naming a live process: that process is never signalled, worker stop says why and exits 1', async () => {
    const { db, pidFile, cli } = workspace();
    const sleeper = spawn('sleep', ['60']);
    cleanups.push(() => sleeper.kill('SIGKILL'));
    await new Promise((resolve) => sleeper.once('spawn', resolve));
    writeForeignPidFile(pidFile, sleeper.pid!, db);
    fs.writeFileSync(pidFile, JSON.stringify({ ...JSON.parse(fs.readFileSync(pidFile, 'utf8')), startTime: null }));

    const stopped = await cli('worker', 'stop', '--timeout', '1s');
    expect(stopped.code).toBe(1);
    expect(stopped.stdout).toBe('');
    expect(stopped.errLines).toEqual([
      `promised: WORKER_UNCONFIRMED: pid ${sleeper.pid} of PID file ${pidFile} was not signalled: the file records no start time, so nothing shows that pid ${sleeper.pid} is still the worker that wrote it; if it is, stop it with kill -TERM ${sleeper.pid}; if not, remove ${pidFile}`,
    ]);
    expect(fs.existsSync(pidFile)).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(sleeper.exitCode).toBeNull();
    expect(sleeper.signalCode).toBeNull();

    // Beside a real worker (its own PID file), the real one is stopped and the other one left alone.
    const real = `${db}.worker-real.pid`;
    expect((await cli('worker', 'start', tasksModule, '--pid-file', real)).code).toBe(0);
    const both = await cli('worker', 'stop', '--json');
    expect(both.code).toBe(1);
    const report = JSON.parse(both.stdout);
    expect(report.unconfirmed).toEqual([sleeper.pid]);
    expect(report.stopped).toHaveLength(1);
    expect(report.stopped).not.toContain(sleeper.pid);
    expect(both.errLines).toEqual([expect.stringMatching(new RegExp(`^promised: pid ${sleeper.pid} of PID file .* was not signalled: the file records no start time`))]);
    expect(fs.existsSync(real)).toBe(false);
    expect(sleeper.exitCode).toBeNull();
    expect(sleeper.signalCode).toBeNull();
  });

  it('written on another host: trusted, and its pid (which means nothing here) is never signalled', async () => {
    const { db, pidFile, cli } = workspace();
    const sleeper = spawn('sleep', ['60']);
    cleanups.push(() => sleeper.kill('SIGKILL'));
    await new Promise((resolve) => sleeper.once('spawn', resolve));
    writeForeignPidFile(pidFile, sleeper.pid!, db);
    fs.writeFileSync(pidFile, JSON.stringify({ ...JSON.parse(fs.readFileSync(pidFile, 'utf8')), host: 'another-host' }));

    const stopped = await cli('worker', 'stop');
    expect(stopped.code).toBe(1);
    expect(stopped.errLines).toEqual([`promised: worker ${sleeper.pid} of ${pidFile} runs on host another-host; stop it there`]);
    expect(fs.existsSync(pidFile)).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(sleeper.exitCode).toBeNull();
    expect(sleeper.signalCode).toBeNull();
  });

  it('that does not hold a worker record: removed', async () => {
    const { pidFile, cli } = workspace();
    fs.writeFileSync(pidFile, 'not json\n');
    const status = await cli('worker', 'status');
    expect(status.errLines).toEqual([expect.stringMatching(/removed stale PID file .* \(it does not hold a promised worker record\)/)]);
    expect(fs.existsSync(pidFile)).toBe(false);
  });

  it('left by a killed worker: the next worker cleans it up and recovers the killed worker’s claim', async () => {
    const { dir, db, pidFile, cli } = workspace();
    const side = path.join(dir, 'side-effects.txt');
    const worker = spawnCli(['worker', 'start', tasksModule, '--foreground', '--db', db], { cwd: dir });
    cleanups.push(() => stopChild(worker.child));
    await until(() => fs.existsSync(pidFile), 15_000, 'the PID file');
    const id = (await cli('enqueue', 'slow', JSON.stringify({ file: side, ms: 60_000 }))).stdout.trim();
    await until(() => fs.existsSync(side) && fs.readFileSync(side, 'utf8').includes(`started ${id}`), 15_000, 'the handler to start');
    worker.child.kill('SIGKILL');
    await worker.exited;

    expect(fs.existsSync(pidFile)).toBe(true);
    const status = await cli('worker', 'status', '--json');
    expect(status.errLines).toEqual([expect.stringContaining(`process ${worker.child.pid} is not running`)]);
    expect(JSON.parse(status.stdout)).toMatchObject({ running: false, counts: { in_progress: 1 } });

    // The next worker on this host sees that the claim's owner is dead and takes it back at once.
    fs.writeFileSync(side, '');
    const next = await cli('worker', 'start', tasksModule, '--stop-timeout', '100ms');
    expect(next.code).toBe(0);
    await until(() => fs.readFileSync(side, 'utf8').includes(`started ${id}`), 15_000, 'the recovered promise to run again');
    const record = JSON.parse((await cli('status', id, '--json')).stdout);
    expect(record).toMatchObject({ status: 'in_progress', attempts: 2 });
    await cli('cancel', id);
    expect((await cli('worker', 'stop')).code).toBe(0);
  });
});
