// A real crash test: a child process runs a chain, a parallel batch and a fan-in; it is killed
// with SIGKILL at random instants while handlers are mid-flight, restarted each time, and finally
// left to finish. Then the database and the handlers' side-effect log are checked.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '..');
const worker = path.join(root, 'test/fixtures/crash-worker.ts');

// Must match test/fixtures/crash-worker.ts.
const CHAIN_LENGTH = 40;
const BATCH_SIZE = 60;
const CONCURRENCY = 4;
const TOTAL = CHAIN_LENGTH + BATCH_SIZE + 1;

interface Run {
  child: ChildProcess;
  lines: string[];
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves when the child printed a line starting with `prefix`; rejects if it exits first. */
  waitFor(prefix: string, timeoutMs?: number): Promise<string>;
}

const children: ChildProcess[] = [];
const dirs: string[] = [];
afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

function startWorker(args: string[]): Run {
  const child = spawn(process.execPath, ['--import', 'tsx', worker, ...args], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, PROMISED_LOG_LEVEL: 'error' },
  });
  children.push(child);
  const lines: string[] = [];
  let stderr = '';
  let partial = '';
  const listeners = new Set<() => void>();
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    const parts = (partial + chunk).split('\n');
    partial = parts.pop()!;
    lines.push(...parts.filter(Boolean));
    for (const listener of listeners) listener();
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => {
      for (const listener of listeners) listener();
      resolve({ code, signal });
    }),
  );
  const waitFor = (prefix: string, timeoutMs = 30_000) =>
    new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => done(new Error(`worker did not print "${prefix}" within ${timeoutMs} ms; stderr: ${stderr}`)), timeoutMs);
      const done = (error: Error | null, line?: string) => {
        clearTimeout(timer);
        listeners.delete(check);
        if (error) reject(error);
        else resolve(line!);
      };
      const check = () => {
        const line = lines.find((l) => l.startsWith(prefix));
        if (line !== undefined) done(null, line);
        else if (child.exitCode !== null || child.signalCode !== null) {
          done(new Error(`worker exited (${child.exitCode ?? child.signalCode}) before printing "${prefix}"; stdout: ${lines.join(' | ')}; stderr: ${stderr}`));
        }
      };
      listeners.add(check);
      check();
    });
  return { child, lines, stderr: () => stderr, exited, waitFor };
}

/** Resolves as soon as the side-effect log's last line is a new `done` of `run` (or after `timeoutMs`). */
async function nextDone(log: string, run: number, timeoutMs: number): Promise<void> {
  const readLines = () => (fs.existsSync(log) ? fs.readFileSync(log, 'utf8').split('\n').filter(Boolean) : []);
  const seen = readLines().length;
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const lines = readLines();
    const lastLine = lines.at(-1);
    if (lines.length > seen && lastLine) {
      const entry = JSON.parse(lastLine) as { event: string; run: number };
      if (entry.event === 'done' && entry.run === run) return;
    }
    await sleep(2);
  }
}

const randomInt = (min: number, max: number) => min + Math.floor(Math.random() * (max - min + 1));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface LogLine {
  id: number;
  name: string;
  attempt: number;
  event: 'start' | 'done';
  run: number;
  pid: number;
  t: number;
}

interface Row {
  id: number;
  status: string;
  attempts: number;
  idempotency_key: string | null;
  payload: string;
  lease_owner: string | null;
  started_at: number | null;
  completed_at: number | null;
}

/**
 * Runs the worker under repeated SIGKILLs, lets a last run finish, and checks the database and
 * the side-effect log. `retries`: the task's retries ('default': the task's own defaults);
 * `pauseAfterDoneMs`: how long each handler blocks the process after its side effect.
 */
async function crashScenario(retries: string, pauseAfterDoneMs = 0): Promise<{ duplicatedIds: number }> {
  const began = Date.now();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'promised-crash-'));
  dirs.push(dir);
  const file = path.join(dir, 'crash.db');
  const log = path.join(dir, 'side-effects.jsonl');
  const workerArgs = (run: number) => [file, log, String(run), retries, String(pauseAfterDoneMs)];

  // --- the crashes ---
  const timedKills = randomInt(5, 8);
  const killedRuns: Array<{ run: number; phase: string; afterMs: number | null }> = [];
  let run = 0;

  // Run 0 is killed as soon as the chain is enqueued: the batch and fan-in may not be stored
  // yet, so the next run's (keyed, idempotent) enqueue must complete the job without duplicating.
  {
    const first = startWorker(workerArgs(run));
    await first.waitFor('graph-enqueued');
    first.child.kill('SIGKILL');
    const { signal } = await first.exited;
    expect(signal).toBe('SIGKILL');
    killedRuns.push({ run, phase: first.lines.some((l) => l.startsWith('enqueued')) ? 'after-enqueue' : 'before-batch-enqueued', afterMs: null });
    run++;
  }
  let finishedEarly: Run | undefined;
  for (let k = 0; k < timedKills; k++, run++) {
    const child = startWorker(workerArgs(run));
    await child.waitFor('started');
    const afterMs = randomInt(150, 700);
    await sleep(afterMs);
    // With a pause after each side effect, kill just after the next `done` line of this run:
    // the process is then blocked before committing it.
    if (pauseAfterDoneMs > 0) await nextDone(log, run, 2_000);
    if (child.child.exitCode !== null) {
      // Everything completed before this kill: this run is the final one.
      finishedEarly = child;
      break;
    }
    child.child.kill('SIGKILL');
    const { signal } = await child.exited;
    if (signal !== 'SIGKILL') {
      finishedEarly = child;
      break;
    }
    killedRuns.push({ run, phase: 'mid-flight', afterMs });
  }

  // --- the final, uninterrupted run ---
  const last = finishedEarly ?? startWorker(workerArgs(run));
  const finalRun = run;
  const completedLine = await last.waitFor('all-completed', 45_000).catch((error: Error) => {
    throw new Error(`${error.message}\nfinal run stdout: ${last.lines.join('\n')}`);
  });
  const exit = await last.exited;
  expect(exit, `final run stdout: ${last.lines.join(' | ')}; stderr: ${last.stderr()}`).toEqual({ code: 0, signal: null });
  expect(completedLine).toBe(`all-completed ${TOTAL}`);
  const resumedLine = last.lines.find((l) => l.startsWith('resumed '));

  // --- the database ---
  const db = new BetterSqlite3(file, { readonly: true });
  let rows: Row[];
  let edges: Array<{ parent_id: number; child_id: number }>;
  let history: Array<{ promise_id: number; event: string; to_status: string }>;
  let deadLetters: number;
  try {
    rows = db.prepare('select id, status, attempts, idempotency_key, payload, lease_owner, started_at, completed_at from promises order by id').all() as Row[];
    edges = db.prepare('select parent_id, child_id from promise_dependencies').all() as typeof edges;
    history = db.prepare('select promise_id, event, to_status from promise_history').all() as typeof history;
    deadLetters = (db.prepare('select count(*) as n from dead_letters').get() as { n: number }).n;
  } finally {
    db.close();
  }
  const byId = new Map(rows.map((row) => [row.id, row]));

  // None lost, none duplicated: exactly the enqueued set, each once.
  expect(rows).toHaveLength(TOTAL);
  const expectedKeys = [
    ...Array.from({ length: CHAIN_LENGTH }, (_, i) => `crash:chain-${i}`),
    ...Array.from({ length: BATCH_SIZE }, (_, i) => `crash:batch-${i}`),
    'crash:fan-in',
  ].sort();
  expect(rows.map((row) => row.idempotency_key).sort()).toEqual(expectedKeys);
  expect(new Set(rows.map((row) => JSON.parse(row.payload).name)).size).toBe(TOTAL);
  // None stuck, none failed: every row completed, its claim released.
  const notCompleted = rows.filter((row) => row.status !== 'completed');
  expect(notCompleted.map((row) => `${row.id}:${row.status}`)).toEqual([]);
  expect(deadLetters).toBe(0);
  for (const row of rows) {
    expect(row.lease_owner).toBeNull();
    expect(row.started_at).not.toBeNull();
    expect(row.completed_at).not.toBeNull();
    expect(row.completed_at!).toBeGreaterThanOrEqual(row.started_at!);
  }
  // The only exceptional transitions are leases lost to the kills, each one an extra attempt.
  expect(history.filter((h) => h.event !== 'LEASE_LOST')).toEqual([]);
  expect(history.every((h) => h.to_status === 'pending')).toBe(true);
  const extraAttempts = rows.reduce((sum, row) => sum + row.attempts - 1, 0);
  expect(history).toHaveLength(extraAttempts);

  // Dependents released in order: each child first started after every parent completed.
  const nameOf = (id: number) => JSON.parse(byId.get(id)!.payload).name as string;
  const idOf = new Map(rows.map((row) => [JSON.parse(row.payload).name as string, row.id]));
  const expectedEdges = [
    ...Array.from({ length: CHAIN_LENGTH - 1 }, (_, i) => `chain-${i}->chain-${i + 1}`),
    ...Array.from({ length: BATCH_SIZE }, (_, i) => `batch-${i}->fan-in`),
  ].sort();
  expect(edges.map((e) => `${nameOf(e.parent_id)}->${nameOf(e.child_id)}`).sort()).toEqual(expectedEdges);
  for (const edge of edges) {
    const parent = byId.get(edge.parent_id)!;
    const child = byId.get(edge.child_id)!;
    expect(child.started_at!, `${nameOf(child.id)} started before ${nameOf(parent.id)} completed`).toBeGreaterThanOrEqual(parent.completed_at!);
  }
  for (let i = 1; i < CHAIN_LENGTH; i++) {
    expect(byId.get(idOf.get(`chain-${i}`)!)!.completed_at!).toBeGreaterThanOrEqual(byId.get(idOf.get(`chain-${i - 1}`)!)!.completed_at!);
  }

  // --- the side-effect log (handlers are at-least-once) ---
  const entries = fs
    .readFileSync(log, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as LogLine);
  const killed = new Set(killedRuns.map((k) => k.run));
  const linesOf = new Map<number, Array<LogLine & { index: number }>>();
  entries.forEach((entry, index) => {
    expect(byId.has(entry.id), `log names unknown promise ${entry.id}`).toBe(true);
    linesOf.set(entry.id, [...(linesOf.get(entry.id) ?? []), { ...entry, index }]);
  });
  let duplicatedIds = 0;
  let extraDone = 0;
  const supersededPerRun = new Map<number, number>();
  for (const row of rows) {
    const lines = linesOf.get(row.id) ?? [];
    const dones = lines.filter((l) => l.event === 'done');
    const starts = lines.filter((l) => l.event === 'start');
    // At least once: every promise's effect happened.
    expect(dones.length, `promise ${row.id} (${nameOf(row.id)}) has no done line`).toBeGreaterThanOrEqual(1);
    // Nothing ran after the committed attempt: the last line of each promise is a done.
    expect(lines.at(-1)!.event).toBe('done');
    // Each attempt is a fresh claim, and there are no more handler starts than claims.
    expect(new Set(starts.map((l) => l.attempt)).size).toBe(starts.length);
    expect(starts.length).toBeLessThanOrEqual(row.attempts);
    // Every done but the last was made by a run that was then killed before it committed.
    const superseded = dones.slice(0, -1);
    for (const line of superseded) {
      expect(killed.has(line.run), `duplicate done of ${row.id} in run ${line.run}, which was not killed`).toBe(true);
      supersededPerRun.set(line.run, (supersededPerRun.get(line.run) ?? 0) + 1);
    }
    if (superseded.length > 0) duplicatedIds++;
    extraDone += superseded.length;
  }
  // A killed run can only have lost the commits of the handlers it was running.
  for (const [, count] of supersededPerRun) expect(count).toBeLessThanOrEqual(CONCURRENCY);
  expect(duplicatedIds).toBeLessThanOrEqual(killedRuns.length * CONCURRENCY);
  // Dependents released in order, as the handlers saw it: a child's first start follows every
  // done of its parent (the parent never ran again after it completed).
  for (const edge of edges) {
    const parentLastDone = linesOf.get(edge.parent_id)!.filter((l) => l.event === 'done').at(-1)!.index;
    const childFirstStart = linesOf.get(edge.child_id)!.find((l) => l.event === 'start')!.index;
    expect(childFirstStart, `${nameOf(edge.child_id)} ran before ${nameOf(edge.parent_id)} finished`).toBeGreaterThan(parentLastDone);
  }
  // The kills landed while handlers were mid-flight: started but never done in that run.
  const interruptedPerRun = killedRuns.map(({ run: r }) => {
    const started = entries.filter((e) => e.run === r && e.event === 'start');
    const doneIds = new Set(entries.filter((e) => e.run === r && e.event === 'done').map((e) => e.id));
    return started.filter((e) => !doneIds.has(e.id)).length;
  });
  const midFlightKills = killedRuns.filter((k) => k.phase === 'mid-flight').length;
  expect(midFlightKills).toBeGreaterThanOrEqual(5);
  // (A kill that lands between a side effect and its commit counts too.)
  const inFlightPerRun = killedRuns.map(({ run: r }, i) => interruptedPerRun[i]! + (supersededPerRun.get(r) ?? 0));
  expect(inFlightPerRun.filter((n, i) => killedRuns[i]!.phase === 'mid-flight' && n > 0).length).toBeGreaterThanOrEqual(3);

  console.log(
    `[crash${pauseAfterDoneMs > 0 ? ` pause ${pauseAfterDoneMs} ms` : ''}] ${TOTAL} promises; kills: ${killedRuns.length} (${midFlightKills} mid-flight, at ${killedRuns.map((k) => k.afterMs ?? k.phase).join('/')} ms); ` +
      `handlers interrupted per killed run: ${interruptedPerRun.join('/')} (+ done, not committed: ${killedRuns.map((k) => supersededPerRun.get(k.run) ?? 0).join('/')}); lease losses: ${history.length}; ` +
      `done lines: ${entries.filter((e) => e.event === 'done').length} (ids with duplicate done: ${duplicatedIds}, extra done lines: ${extraDone}, ` +
      `bound ${killedRuns.length * CONCURRENCY}); final run ${finalRun}: ${resumedLine}; ${Date.now() - began} ms`,
  );
  return { duplicatedIds };
}

describe('crash recovery (real process, SIGKILL)', () => {
  it('a chain, a batch and a fan-in survive repeated SIGKILLs: every promise completes exactly once, in dependency order', async () => {
    // Default task options (no retries): a crash must not spend the retry budget.
    await crashScenario('default');
  });

  it('the same with retries configured', async () => {
    await crashScenario('20');
  });

  it('a kill between a side effect and its commit re-runs the handler (at least once) but records one completion', async () => {
    // Each handler blocks the process for 60 ms after its side effect and the kills are timed
    // into that window, before the outcome is committed: those promises must run again, and
    // still complete once.
    const { duplicatedIds } = await crashScenario('default', 60);
    expect(duplicatedIds).toBeGreaterThanOrEqual(3);
  });
});
