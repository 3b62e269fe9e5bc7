import type { Engine, EnqueueOptions, PromiseRecord } from '../index.js';
import { parseJsonArgument } from './arguments.js';
import { displayDatabase, isPostgresUrl, probeDatabase } from './database.js';
import { CliError, EXIT } from './exit-codes.js';
import { loadTasks, registerTasks, type TasksModule } from './load-tasks.js';
import { openEngine, type GlobalOptions } from './open-engine.js';
import type { Output } from './output.js';
import { liveWorkers, pidFilesOf } from './pid-file.js';
import { createProgress } from './progress.js';
import { exitCodeForSignal, onShutdownSignal } from './signals.js';

export interface EnqueueCommandOptions extends GlobalOptions {
  priority?: number;
  delay?: number;
  dependsOn?: string[];
  key?: string;
  tasks?: string;
  pidFile?: string;
  wait?: boolean;
  timeout?: number;
}

/**
 * `promised enqueue TYPE [JSON]`: stores a promise and prints its id. The task type is checked
 * against the tasks module (`--tasks`, or the running worker's); with `--tasks` and no live worker
 * the promise runs here, synchronously, before the command returns (a git hook never waits for a
 * worker that is not there). `--wait` waits for the outcome and prints the result.
 */
export async function enqueueCommand(type: string, json: string | undefined, options: EnqueueCommandOptions, output: Output): Promise<number> {
  const payload = parseJsonArgument(json);
  const workers = liveWorkers(pidFilesOf(options.db, options.pidFile), output.note);
  const tasksPath = options.tasks ?? workers[0]?.info.tasks;
  if (tasksPath === undefined) {
    throw new CliError(
      'TASKS_MODULE_REQUIRED',
      `cannot check task type "${type}": pass --tasks TASKS_MODULE (no worker is running for ${displayDatabase(options.db)} to take its tasks module from)`,
    );
  }
  const tasks = await loadTasks(tasksPath);
  const here = workers.length === 0;
  const enqueueOptions = { priority: options.priority, delay: options.delay, dependsOn: options.dependsOn, key: options.key };
  if (await isMissingFile(options.db)) await rehearse(tasks, type, payload, enqueueOptions);
  const engine = await openEngine(options.db, { immediate: here, concurrency: 1 });
  let stopping: Promise<void> | undefined;
  const stop = () => (stopping ??= engine.stop());
  let id: string | undefined;
  try {
    await registerTasks(tasks, engine);
    if (here) {
      let interruptedBy: NodeJS.Signals | undefined;
      const release = onShutdownSignal((signal) => {
        interruptedBy = signal;
        output.note('interrupted: finishing the running handler first (interrupt again to leave it to the next worker)');
        void stop();
      });
      try {
        id = await engine.enqueue(type, payload, enqueueOptions);
      } finally {
        release();
      }
      if (interruptedBy !== undefined) {
        output.result({ id, ranHere: true, interrupted: true }, () => id!);
        return exitCodeForSignal(interruptedBy);
      }
      const record = (await engine.get(id))!;
      output.note(`no worker is running for ${displayDatabase(options.db)}${isPostgresUrl(options.db) ? ' on this host' : ''}; ran promise ${id} here, synchronously: ${describeOutcome(record)}`);
      if (!options.wait) {
        output.result({ id, status: record.status, ranHere: true }, () => id!);
        return EXIT.ok;
      }
      output.line(id);
      return printOutcome(record, output, true);
    }
    id = await engine.enqueue(type, payload, enqueueOptions);
    if (!options.wait) {
      output.result({ id, status: 'enqueued', ranHere: false }, () => id!);
      return EXIT.ok;
    }
    output.line(id);
    return await waitForOutcome(engine, id, options, output, stop);
  } finally {
    await stop();
  }
}

/** Waits for a promise a worker runs: a bar on a terminal, nothing otherwise; Ctrl-C stops waiting, not the promise. */
async function waitForOutcome(engine: Engine, id: string, options: EnqueueCommandOptions, output: Output, stop: () => Promise<void>): Promise<number> {
  let interruptedBy: NodeJS.Signals | undefined;
  const release = onShutdownSignal((signal) => {
    interruptedBy = signal;
    void stop();
  });
  const progress = await createProgress(`promise ${id}`);
  const poll = setInterval(() => {
    engine.get(id).then(
      (record) => record && progress.update(record.progress?.current ?? 0, record.progress?.total ?? 1, record.status),
      () => undefined,
    );
  }, 200);
  try {
    await engine.result(id, { timeout: options.timeout });
  } catch (error) {
    // A failed promise is printed below; a stop we asked for is an interruption, not an error.
    if (interruptedBy === undefined && (error as { code?: string }).code !== 'PROMISE_FAILED') throw error;
  } finally {
    clearInterval(poll);
    progress.stop();
    release();
  }
  if (interruptedBy !== undefined) {
    output.note(`stopped waiting; promise ${id} goes on in the worker (promised status ${id})`);
    return exitCodeForSignal(interruptedBy);
  }
  return printOutcome((await engine.get(id))!, output, false);
}

function printOutcome(record: PromiseRecord, output: Output, ranHere: boolean): number {
  const { id, status, result, error } = record;
  if (status === 'completed') {
    output.result({ id, status, result, ranHere }, () => (result === undefined || result === null ? 'completed' : JSON.stringify(result)));
    return EXIT.ok;
  }
  if (status === 'failed') {
    if (output.json) output.result({ id, status, error, ranHere }, () => '');
    output.note(`promise ${id} failed: ${error?.code}: ${error?.message}`);
    return EXIT.failure;
  }
  output.result({ id, status, ranHere }, () => status);
  output.note(`promise ${id} is ${status}: ${status === 'waiting' ? 'its dependencies are unfinished' : 'not run yet'} and no worker is running to finish it`);
  return EXIT.failure;
}

function describeOutcome(record: PromiseRecord): string {
  if (record.status === 'failed') return `failed (${record.error?.code}: ${record.error?.message})`;
  if (record.status === 'waiting') return 'waiting for its dependencies (start a worker to run them)';
  return record.status;
}

/** An SQLite `--db` with no file there (a dangling symlink included): opening it would create one. */
async function isMissingFile(database: string): Promise<boolean> {
  return !isPostgresUrl(database) && (await probeDatabase(database)) === 'missing';
}

/**
 * Refuses, before any file is created, an enqueue that the database it would create would
 * refuse: the same enqueue on an empty in-memory database with the same tasks. That database
 * holds no promise, as the file did not exist when we looked, so an unknown type, a bad payload
 * or option and any `--depends-on` id are refused here exactly as they would be there. Nothing
 * is ever deleted afterwards: by then another process may have created the file and written to it.
 */
async function rehearse(tasks: TasksModule, type: string, payload: unknown, enqueueOptions: EnqueueOptions): Promise<void> {
  const rehearsal = await openEngine(':memory:', { concurrency: 1, changeCheckIntervalMs: 0, cleanupIntervalMs: 0 });
  try {
    await registerTasks(tasks, rehearsal);
    await rehearsal.enqueue(type, payload, enqueueOptions);
  } finally {
    await rehearsal.stop();
  }
}
