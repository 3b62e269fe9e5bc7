import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isProcessAlive, processStartTime } from '../kernel/local-process.js';
import { workerFileBase } from './database.js';
import { CliError, EXIT } from './exit-codes.js';

/** What a worker writes into its PID file, so other commands can find it and prove it is still it. */
export interface WorkerInfo {
  pid: number;
  /**
   * The process's start time in clock ticks since boot (`/proc/<pid>/stat`, field 22), or null
   * where there is no /proc. A pid reused by another program has another start time.
   */
  startTime: string | null;
  /** A random token, so a PID file is removed only by the worker that wrote it. */
  token: string;
  host: string;
  /** The SQLite file's absolute path, or the PostgreSQL URL without its password. */
  database: string;
  tasks: string;
  logFile: string | null;
  concurrency: number;
  stopTimeoutMs: number;
  /** Milliseconds since the epoch. */
  startedAt: number;
}

/** What a PID file says about its worker. */
export type PidFileState =
  | { state: 'absent'; file: string }
  | { state: 'running'; file: string; info: WorkerInfo }
  | { state: 'stale'; file: string; reason: string; content: string };

/**
 * `<database>.worker.pid` beside an SQLite file; for PostgreSQL,
 * `./promised-<host>-<port>-<database>.worker.pid` in the current directory (see `workerFileBase`).
 */
export function defaultPidFile(database: string): string {
  return `${workerFileBase(database)}.worker.pid`;
}

/** Beside the PID file (`x.pid` → `x.log`), or `<database>.worker.log` (named as the PID file is). */
export function defaultLogFile(database: string, pidFile: string | undefined): string {
  if (pidFile !== undefined && pidFile.endsWith('.pid')) return `${path.resolve(pidFile.slice(0, -'.pid'.length))}.log`;
  return `${workerFileBase(database)}.worker.log`;
}

/**
 * Every PID file that may name a worker of `database`: the explicit one, or the default one and
 * its siblings (`<database>.worker*.pid`, which is how several workers of one database are named).
 */
export function pidFilesOf(database: string, explicit: string | undefined): string[] {
  if (explicit !== undefined) return [path.resolve(explicit)];
  const primary = defaultPidFile(database);
  const directory = path.dirname(primary);
  const prefix = `${path.basename(workerFileBase(database))}.worker`;
  let siblings: string[] = [];
  try {
    siblings = fs
      .readdirSync(directory)
      .filter((name) => name.startsWith(prefix) && name.endsWith('.pid'))
      .map((name) => path.join(directory, name));
  } catch {
    // No folder, no workers.
  }
  return [...new Set([primary, ...siblings.sort()])];
}

/** The PID file's content for this process. */
export function describeThisWorker(fields: Omit<WorkerInfo, 'pid' | 'startTime' | 'token' | 'host' | 'startedAt'>): WorkerInfo {
  return {
    pid: process.pid,
    startTime: processStartTime(process.pid),
    token: randomUUID(),
    host: os.hostname(),
    startedAt: Date.now(),
    ...fields,
  };
}

/** Reads a PID file and checks that the process it names is alive and is still that worker. */
export function inspectPidFile(file: string): PidFileState {
  let content: string;
  try {
    content = fs.readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { state: 'absent', file };
    throw error;
  }
  const info = parseInfo(content);
  if (!info) return { state: 'stale', file, content, reason: 'it does not hold a promised worker record' };
  // Another host's pid means nothing here; trust the file rather than remove a live worker's.
  if (info.host !== os.hostname()) return { state: 'running', file, info };
  if (!isProcessAlive(info.pid)) return { state: 'stale', file, content, reason: `process ${info.pid} is not running` };
  const startTime = processStartTime(info.pid);
  if (startTime !== null && info.startTime !== null && startTime !== info.startTime) {
    return { state: 'stale', file, content, reason: `pid ${info.pid} now belongs to another program` };
  }
  return { state: 'running', file, info };
}

/**
 * Removes a stale PID file, unless someone replaced it since it was read (a worker starting right
 * now), and says so through `say`.
 */
export function removeStale(state: Extract<PidFileState, { state: 'stale' }>, say: (line: string) => void): void {
  try {
    if (fs.readFileSync(state.file, 'utf8') !== state.content) return;
    fs.unlinkSync(state.file);
    say(`removed stale PID file ${state.file} (${state.reason})`);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}

/** Finds the live workers among `files`, removing stale PID files on the way. */
export function liveWorkers(files: string[], say: (line: string) => void): Array<{ file: string; info: WorkerInfo }> {
  const live: Array<{ file: string; info: WorkerInfo }> = [];
  for (const file of files) {
    const state = inspectPidFile(file);
    if (state.state === 'running') live.push({ file, info: state.info });
    else if (state.state === 'stale') removeStale(state, say);
  }
  return live;
}

/**
 * Writes the PID file if no live worker holds it. Creation is atomic and exclusive (a hard link
 * of a complete temporary file), so two workers starting at once cannot both win and a reader
 * never sees a half-written file.
 */
export function acquirePidFile(file: string, info: WorkerInfo, say: (line: string) => void): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const temporary = `${file}.${process.pid}.${info.token.slice(0, 8)}.tmp`;
  fs.writeFileSync(temporary, `${JSON.stringify(info)}\n`);
  try {
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        fs.linkSync(temporary, file);
        return;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
      const state = inspectPidFile(file);
      if (state.state === 'running') throw workerRunningError(state.info, file);
      if (state.state === 'stale') removeStale(state, say);
    }
    throw new CliError('PID_FILE_BUSY', `could not create PID file ${file}: it keeps reappearing; is another worker starting?`, EXIT.failure);
  } finally {
    fs.rmSync(temporary, { force: true });
  }
}

/** Removes the PID file if it is still this worker's (same token). */
export function releasePidFile(file: string, info: WorkerInfo): void {
  try {
    const current = parseInfo(fs.readFileSync(file, 'utf8'));
    if (current?.token === info.token) fs.unlinkSync(file);
  } catch {
    // Already gone, or replaced by an operator: not ours to remove.
  }
}

export function workerRunningError(info: WorkerInfo, file: string): CliError {
  return new CliError(
    'WORKER_RUNNING',
    `a worker is already running for ${info.database} (pid ${info.pid}, PID file ${file}); ` +
      `stop it with "promised worker stop", or give another worker its own --pid-file`,
    EXIT.failure,
  );
}

function parseInfo(content: string): WorkerInfo | undefined {
  try {
    const value = JSON.parse(content) as Partial<WorkerInfo> | null;
    if (!value || typeof value !== 'object' || !Number.isSafeInteger(value.pid) || (value.pid as number) <= 0) return undefined;
    if (typeof value.token !== 'string' || typeof value.host !== 'string') return undefined;
    return value as WorkerInfo;
  } catch {
    return undefined;
  }
}

/**
 * Why the live local process a PID file names cannot be confirmed as the worker that wrote it,
 * or null when its start time matches the one recorded. Such a process is never signalled: a pid
 * whose start time cannot be compared may belong to any program by now.
 */
export function unconfirmedWorker(info: WorkerInfo): string | null {
  if (info.startTime === null) return 'the file records no start time';
  const startTime = processStartTime(info.pid);
  if (startTime === null) return `this system does not tell when process ${info.pid} started`;
  return startTime === info.startTime ? null : `pid ${info.pid} now belongs to another program`;
}

/** True while the process a PID file names is alive and is still the worker that wrote it. */
export function isWorkerAlive(info: WorkerInfo): boolean {
  if (!isProcessAlive(info.pid)) return false;
  const startTime = processStartTime(info.pid);
  return startTime === null || info.startTime === null || startTime === info.startTime;
}
