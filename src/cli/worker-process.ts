import path from 'node:path';
import type { Logger } from 'pino';
import type { Engine } from '../index.js';
import { databaseIdentity } from './database.js';
import { exitCodeOf, oneLine } from './exit-codes.js';
import { loadTasks, registerTasks } from './load-tasks.js';
import { openEngine } from './open-engine.js';
import { acquirePidFile, defaultPidFile, describeThisWorker, releasePidFile } from './pid-file.js';
import { exitCodeForSignal, onShutdownSignal } from './signals.js';

/** How a worker runs. */
export interface WorkerSettings {
  tasks: string;
  database: string;
  concurrency: number;
  stopTimeoutMs: number;
  pidFile?: string;
  /** Where pino writes; stderr when absent (systemd, containers). */
  logFile?: string;
}

/** What a worker started by `worker start` (detached) tells its parent over the IPC channel. */
export type WorkerReport = { type: 'ready'; pid: number } | { type: 'error'; code: string; message: string; exitCode: number };

/**
 * `promised worker start --foreground`: loads the tasks, takes the PID file, starts the engine
 * and works until SIGTERM or SIGINT, then stops gracefully (running handlers finish within the
 * stop timeout, the rest are handed back) and removes its PID file. Resolves the exit code.
 */
export async function runWorker(settings: WorkerSettings): Promise<number> {
  const logger = await createWorkerLogger(settings.logFile);
  const pidFile = path.resolve(settings.pidFile ?? defaultPidFile(settings.database));
  let engine: Engine | undefined;
  let info: ReturnType<typeof describeThisWorker> | undefined;
  try {
    const tasks = await loadTasks(settings.tasks);
    info = describeThisWorker({
      database: databaseIdentity(settings.database),
      tasks: tasks.path,
      logFile: settings.logFile === undefined ? null : path.resolve(settings.logFile),
      concurrency: settings.concurrency,
      stopTimeoutMs: settings.stopTimeoutMs,
    });
    acquirePidFile(pidFile, info, (line) => logger.warn(line));
    engine = await openEngine(settings.database, { concurrency: settings.concurrency, stopTimeoutMs: settings.stopTimeoutMs, logger });
    await registerTasks(tasks, engine);
    const summary = await engine.start();
    logger.info({ pid: process.pid, pidFile, database: info.database, tasks: tasks.path, concurrency: settings.concurrency, resumed: summary.resumed }, 'worker started');
  } catch (error) {
    await engine?.stop().catch(() => undefined);
    if (info) releasePidFile(pidFile, info);
    logger.error({ err: error }, 'worker failed to start');
    const code = (error as { code?: unknown }).code;
    await report({ type: 'error', code: typeof code === 'string' ? code : 'WORKER_FAILED', message: oneLine(String((error as Error)?.message ?? error)), exitCode: exitCodeOf(error) });
    throw error;
  }
  await report({ type: 'ready', pid: process.pid });
  return workUntilSignalled(engine, logger, () => releasePidFile(pidFile, info!));
}

/** Waits for SIGTERM/SIGINT and stops; the engine's own timers do not keep the process alive. */
function workUntilSignalled(engine: Engine, logger: Logger, release: () => void): Promise<number> {
  const keepAlive = setInterval(() => undefined, 2 ** 30);
  return new Promise((resolve) => {
    const dispose = onShutdownSignal(
      (signal) => {
        logger.info({ signal }, 'stopping: no new claims; waiting for running handlers');
        engine
          .stop()
          .catch((error: unknown) => logger.error({ err: error }, 'graceful stop failed'))
          .finally(() => {
            dispose();
            clearInterval(keepAlive);
            release();
            logger.info('worker stopped');
            resolve(0);
          });
      },
      (signal) => {
        // A second signal: leave now. Running claims are recovered by the next worker to start
        // on this host (their owner is dead) or when their leases expire.
        logger.warn({ signal }, 'second signal: exiting without waiting for running handlers');
        release();
        process.exit(exitCodeForSignal(signal));
      },
    );
  });
}

async function createWorkerLogger(logFile: string | undefined): Promise<Logger> {
  const { default: pino } = await import('pino');
  const destination = logFile === undefined ? pino.destination(2) : pino.destination({ dest: path.resolve(logFile), append: true, mkdir: true, sync: true });
  return pino({ name: 'promised-worker', level: process.env.PROMISED_LOG_LEVEL ?? 'info' }, destination);
}

/** The variable `worker start` sets on the detached worker it waits for. */
export const REPORT_TO_PARENT_ENV = 'PROMISED_WORKER_REPORT';

/**
 * Tells the parent `worker start` how the start went, and lets the IPC channel go. Only that
 * parent: a supervisor that happens to open an IPC channel (pm2, a test runner) is left alone.
 */
function report(message: WorkerReport): Promise<void> {
  const send = process.send?.bind(process);
  if (!send || !process.connected || process.env[REPORT_TO_PARENT_ENV] !== '1') return Promise.resolve();
  return new Promise((resolve) => {
    send(message, undefined, {}, () => {
      process.disconnect();
      resolve();
    });
  });
}
