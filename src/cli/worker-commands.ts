import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { EngineStats } from '../index.js';
import { databaseIdentity, displayDatabase, isPostgresUrl, probeDatabase } from './database.js';
import { CliError, EXIT } from './exit-codes.js';
import { loadTasks, registerTasks } from './load-tasks.js';
import { openEngine, type GlobalOptions } from './open-engine.js';
import { formatCounts, formatDuration, type Output } from './output.js';
import { defaultLogFile, defaultPidFile, inspectPidFile, isWorkerAlive, liveWorkers, pidFilesOf, removeStale, unconfirmedWorker, workerRunningError, type WorkerInfo } from './pid-file.js';
import { onShutdownSignal } from './signals.js';
import { REPORT_TO_PARENT_ENV, runWorker, type WorkerReport } from './worker-process.js';

export interface WorkerStartOptions extends GlobalOptions {
  concurrency: number;
  stopTimeout: number;
  foreground?: boolean;
  pidFile?: string;
  logFile?: string;
}

/** How long `worker start` waits for the detached worker to say it is ready. */
const READY_TIMEOUT_MS = 30_000;

/**
 * `promised worker start TASKS_MODULE`: in the foreground, runs the worker in this process;
 * otherwise checks everything that can be refused here (the module, a running worker, the
 * database), then starts itself with `--foreground` as a detached process writing to the log
 * file, and returns once that worker reports it is ready.
 */
export async function workerStart(tasksModule: string, options: WorkerStartOptions, output: Output): Promise<number> {
  if (options.foreground) {
    return runWorker({
      tasks: tasksModule,
      database: options.db,
      concurrency: options.concurrency,
      stopTimeoutMs: options.stopTimeout,
      pidFile: options.pidFile,
      logFile: options.logFile,
    });
  }
  const tasks = await loadTasks(tasksModule);
  const pidFile = path.resolve(options.pidFile ?? defaultPidFile(options.db));
  const logFile = path.resolve(options.logFile ?? defaultLogFile(options.db, options.pidFile));
  const state = inspectPidFile(pidFile);
  if (state.state === 'running') throw workerRunningError(state.info, pidFile);
  if (state.state === 'stale') removeStale(state, output.note);
  // Open the database once here, so a file that is not a promised database is refused on this
  // terminal rather than in a log file.
  const probe = await openEngine(options.db, { changeCheckIntervalMs: 0 });
  try {
    await registerTasks(tasks, probe);
  } finally {
    await probe.stop();
  }

  fs.mkdirSync(path.dirname(logFile), { recursive: true });
  const log = fs.openSync(logFile, 'a');
  // A PostgreSQL URL reaches the worker through PROMISED_DB, not its command line: a password in
  // the arguments would be shown to every user of the host by ps.
  const postgres = isPostgresUrl(options.db);
  const args = [
    ...process.execArgv,
    process.argv[1]!,
    'worker',
    'start',
    tasks.path,
    '--foreground',
    ...(postgres ? [] : ['--db', path.resolve(options.db)]),
    '--concurrency',
    String(options.concurrency),
    '--stop-timeout',
    String(options.stopTimeout),
    '--pid-file',
    pidFile,
    '--log-file',
    logFile,
  ];
  const child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', log, log, 'ipc'], env: { ...process.env, ...(postgres ? { PROMISED_DB: options.db } : {}), [REPORT_TO_PARENT_ENV]: '1' } });
  fs.closeSync(log);
  const outcome = await new Promise<WorkerReport | { type: 'exit'; code: number | null } | { type: 'timeout' }>((resolve) => {
    const timer = setTimeout(() => resolve({ type: 'timeout' }), READY_TIMEOUT_MS);
    child.once('message', (message: WorkerReport) => {
      clearTimeout(timer);
      resolve(message);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ type: 'exit', code });
    });
  });
  if (child.connected) child.disconnect();
  child.unref();
  if (outcome.type === 'error') throw new CliError(outcome.code, outcome.message, outcome.exitCode);
  if (outcome.type === 'exit') throw new CliError('WORKER_FAILED', `the worker exited (code ${outcome.code}) before it was ready; see ${logFile}`, EXIT.failure);
  if (outcome.type === 'timeout') throw new CliError('WORKER_FAILED', `the worker (pid ${child.pid}) did not report ready within ${READY_TIMEOUT_MS / 1000}s; see ${logFile}`, EXIT.failure);
  output.result({ pid: outcome.pid, database: databaseIdentity(options.db), pidFile, logFile }, () => `worker started (pid ${outcome.pid}); log ${logFile}, PID file ${pidFile}`);
  return EXIT.ok;
}

export interface WorkerStopOptions extends GlobalOptions {
  pidFile?: string;
  /** How long to wait, ms; defaults to the worker's stop timeout plus 10 s. */
  timeout?: number;
}

/**
 * `promised worker stop`: sends SIGTERM to each live worker of the database and waits until it
 * has exited (its running handlers finished or were handed back), cleaning stale PID files.
 */
export async function workerStop(options: WorkerStopOptions, output: Output): Promise<number> {
  const found = liveWorkers(pidFilesOf(options.db, options.pidFile), output.note);
  // A pid recorded on another host (a shared folder) names some unrelated process here.
  const remote = found.filter(({ info }) => info.host !== os.hostname());
  for (const { file, info } of remote) output.note(`worker ${info.pid} of ${file} runs on host ${info.host}; stop it there`);
  const local = found.filter(({ info }) => info.host === os.hostname());
  // Only a process proven to be the worker (by its start time) is signalled.
  const unconfirmed = local.flatMap(({ file, info }) => {
    const reason = unconfirmedWorker(info);
    const why = `pid ${info.pid} of PID file ${file} was not signalled: ${reason}, so nothing shows that pid ${info.pid} is still the worker that wrote it; if it is, stop it with kill -TERM ${info.pid}; if not, remove ${file}`;
    return reason === null ? [] : [{ file, pid: info.pid, why }];
  });
  const workers = local.filter(({ file }) => !unconfirmed.some((other) => other.file === file));
  if (workers.length === 0 && unconfirmed.length > 0) throw new CliError('WORKER_UNCONFIRMED', unconfirmed.map(({ why }) => why).join('. '), EXIT.failure);
  for (const { why } of unconfirmed) output.note(why);
  if (workers.length === 0) {
    output.result({ stopped: [] }, () => `no worker is running for ${displayDatabase(options.db)}${remote.length > 0 ? ' on this host' : ''}`);
    return remote.length > 0 ? EXIT.failure : EXIT.ok;
  }
  const started = Date.now();
  for (const { info } of workers) signal(info.pid, 'SIGTERM');
  output.line(`stopping ${workers.map(({ info }) => `pid ${info.pid}`).join(', ')}: waiting for running handlers to finish`);
  let interrupted = false;
  const release = onShutdownSignal(() => (interrupted = true));
  try {
    const deadline = started + (options.timeout ?? Math.max(...workers.map(({ info }) => info.stopTimeoutMs ?? 30_000)) + 10_000);
    let remaining = workers;
    while (remaining.length > 0) {
      if (interrupted) throw new CliError('INTERRUPTED', `stopped waiting; ${describePids(remaining)} still stopping`, EXIT.interrupted);
      if (Date.now() > deadline) {
        throw new CliError(
          'WORKER_STOP_TIMEOUT',
          `${describePids(remaining)} still running after ${formatDuration(Date.now() - started)}; its handlers may still be finishing (kill -9 ${remaining[0]!.info.pid} forces it; its claims are then recovered)`,
          EXIT.failure,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
      remaining = remaining.filter(({ info }) => isWorkerAlive(info));
    }
  } finally {
    release();
  }
  // A worker that died without cleaning up leaves its file; the next inspection removes it.
  liveWorkers(
    workers.map(({ file }) => file),
    output.note,
  );
  const elapsed = Date.now() - started;
  output.result(
    { stopped: workers.map(({ info }) => info.pid), elapsedMs: elapsed, ...(unconfirmed.length > 0 ? { unconfirmed: unconfirmed.map(({ pid }) => pid) } : {}) },
    () => `worker stopped (${workers.map(({ info }) => `pid ${info.pid}`).join(', ')}) after ${formatDuration(elapsed)}`,
  );
  return unconfirmed.length > 0 ? EXIT.failure : EXIT.ok;
}

export interface WorkerStatusOptions extends GlobalOptions {
  pidFile?: string;
}

/** `promised worker status`: running or not, pid, uptime, and the database's counts by status. */
export async function workerStatus(options: WorkerStatusOptions, output: Output): Promise<number> {
  const workers = liveWorkers(pidFilesOf(options.db, options.pidFile), output.note);
  let counts: EngineStats | null = null;
  if ((await probeDatabase(options.db)) === 'present') {
    const engine = await openEngine(options.db, { changeCheckIntervalMs: 0 });
    try {
      counts = await engine.stats();
    } finally {
      await engine.stop();
    }
  }
  const now = Date.now();
  const described = workers.map(({ file, info }) => ({
    pid: info.pid,
    uptimeMs: now - info.startedAt,
    startedAt: new Date(info.startedAt).toISOString(),
    concurrency: info.concurrency,
    tasks: info.tasks,
    pidFile: file,
    logFile: info.logFile,
  }));
  output.result(
    {
      running: workers.length > 0,
      database: databaseIdentity(options.db),
      workers: described,
      counts: counts && { waiting: counts.waiting, pending: counts.pending, in_progress: counts.in_progress, completed: counts.completed, failed: counts.failed },
    },
    () => {
      const lines =
        described.length === 0
          ? [`worker: not running (${displayDatabase(options.db)})`]
          : described.flatMap((w) => [
              `worker: running, pid ${w.pid}, up ${formatDuration(w.uptimeMs)}, concurrency ${w.concurrency}`,
              `  tasks ${w.tasks}`,
              `  PID file ${w.pidFile}${w.logFile ? `, log ${w.logFile}` : ''}`,
            ]);
      lines.push(counts ? `promises: ${formatCounts(counts)}` : `promises: no database at ${displayDatabase(options.db)} yet`);
      return lines.join('\n');
    },
  );
  return EXIT.ok;
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

function describePids(workers: Array<{ info: WorkerInfo }>): string {
  return workers.length === 1 ? `worker ${workers[0]!.info.pid} is` : `workers ${workers.map(({ info }) => info.pid).join(', ')} are`;
}
