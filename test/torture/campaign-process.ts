// A campaign worker in its own Node process (through tsx): its stdout lines for the driver to
// wait on, its engine's log (stderr, at the engine's default level) in a file of its own.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '../..');

export interface CampaignProcess {
  child: ChildProcess;
  /** The engine's lease owner id, once started. */
  owner: string;
  /** Its log of handler starts, ends and commits (one JSON object a line). */
  log: string;
  /** Its engine's own log lines (pino JSON). */
  stderr: string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  alive(): boolean;
}

/**
 * Starts `test/torture/<script>` with `args` and resolves once it printed `started <owner>`
 * (its engine started); rejects if it exits first or does not start within `timeoutMs`.
 */
export async function startCampaignProcess(script: string, dir: string, name: string, args: string[], timeoutMs = 60_000): Promise<CampaignProcess> {
  const log = path.join(dir, `${name}.log`);
  const stderr = path.join(dir, `${name}.stderr`);
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'test/torture', script), log, ...args], {
    cwd: root,
    stdio: ['ignore', 'pipe', fs.openSync(stderr, 'a')],
    // The engine's default log level, so what a user would see is kept (and summarised).
    env: { ...process.env, PROMISED_LOG_LEVEL: 'warn' },
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const owner = await new Promise<string>((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => reject(new Error(`${name} did not start within ${timeoutMs} ms: ${fs.readFileSync(stderr, 'utf8').slice(-2_000)}`)), timeoutMs);
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      output += chunk;
      const match = /^started (\S+)$/m.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${code ?? signal}) before starting: ${fs.readFileSync(stderr, 'utf8').slice(-2_000)}`));
    });
  });
  return { child, owner, log, stderr, exited, alive: () => child.exitCode === null && child.signalCode === null };
}

/** SIGTERM, then how it ended: a graceful stop exits 0 within `timeoutMs`; otherwise SIGKILL and `stopped: false`. */
export async function stopCampaignProcess(worker: CampaignProcess, timeoutMs: number): Promise<{ stopped: boolean; code: number | null }> {
  if (!worker.alive()) return { stopped: false, code: (await worker.exited).code };
  worker.child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), timeoutMs)));
  const ended = await Promise.race([worker.exited, late]);
  clearTimeout(timer);
  if (ended === 'late') {
    worker.child.kill('SIGKILL');
    await worker.exited;
    return { stopped: false, code: null };
  }
  return { stopped: ended.code === 0, code: ended.code };
}

/** One line of a campaign worker's log. */
export interface LogEntry {
  event: 'start' | 'end' | 'commit' | 'error';
  id: number;
  attempt: number;
  pid: number;
  t: number;
  type?: string;
  message?: string;
}

/** Every entry of a worker's log (a line torn by a SIGKILL mid-write is skipped). */
export function readLog(file: string): LogEntry[] {
  if (!fs.existsSync(file)) return [];
  const entries: LogEntry[] = [];
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line) continue;
    try {
      entries.push(JSON.parse(line) as LogEntry);
    } catch {
      // A torn last line.
    }
  }
  return entries;
}

/** How many times each message was logged at level error or above by the engine of a worker. */
export function engineErrors(file: string): Record<string, number> {
  const counts: Record<string, number> = {};
  if (!fs.existsSync(file)) return counts;
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    // Anything else on stderr (an uncaught exception, a warning of Node) is worth a look too.
    if (!line.startsWith('{')) {
      counts['(stderr output that is not a log line)'] = (counts['(stderr output that is not a log line)'] ?? 0) + 1;
      continue;
    }
    try {
      const entry = JSON.parse(line) as { level?: number; msg?: string };
      if ((entry.level ?? 0) >= 50) counts[entry.msg ?? '?'] = (counts[entry.msg ?? '?'] ?? 0) + 1;
    } catch {
      counts['(unparsable log line)'] = (counts['(unparsable log line)'] ?? 0) + 1;
    }
  }
  return counts;
}

/** Sums several `engineErrors` counts. */
export function sumCounts(counts: Array<Record<string, number>>): Record<string, number> {
  const total: Record<string, number> = {};
  for (const count of counts) for (const [message, n] of Object.entries(count)) total[message] = (total[message] ?? 0) + n;
  return total;
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
