// The torture driver: runs the torture worker, SIGKILLs it at random instants (some landing
// mid-commit), restarts it each time, lets it finish, then checks the database and the
// side-effect log: 0 lost, 0 duplicated completions, 0 stuck, every dependency order respected.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';

export interface TortureOptions {
  promises: number;
  workflows: number;
  kills: number;
  /** Keep the folder with the database and log (for inspection). */
  keep?: boolean;
  log?: (line: string) => void;
}

export interface TortureReport {
  promises: number;
  workflowSteps: number;
  cronRuns: number;
  kills: number;
  lost: number;
  duplicatedCompletions: number;
  stuck: number;
  orderViolations: number;
  workflowsCompleted: number;
  reruns: number;
  seconds: number;
}

const root = path.resolve(import.meta.dirname, '../..');

function startWorker(file: string, log: string, options: TortureOptions) {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'test/torture/torture-worker.ts'), file, log, String(options.promises), String(options.workflows)], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, PROMISED_LOG_LEVEL: 'silent' },
  });
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  let output = '';
  const enqueued = new Promise<void>((resolve) => {
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      output += chunk;
      if (output.includes('enqueued')) resolve();
    });
    void exited.then(() => resolve());
  });
  return { child, exited, enqueued };
}

function query<T>(file: string, sql: string): T[] {
  const db = new BetterSqlite3(file, { readonly: true, fileMustExist: true });
  try {
    return db.prepare(sql).all() as T[];
  } finally {
    db.close();
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function torture(options: TortureOptions): Promise<TortureReport> {
  const say = options.log ?? (() => undefined);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'promised-torture-'));
  const file = path.join(dir, 'torture.db');
  const log = path.join(dir, 'effects.log');
  const began = Date.now();
  const expectedGraphRows = Math.ceil(options.promises / 50) * 50;
  const unfinished = () => {
    if (!fs.existsSync(file)) return Number.POSITIVE_INFINITY;
    try {
      const [row] = query<{ n: number }>(file, `select count(*) as n from promises where type = 'work' and status = 'completed'`);
      const [wf] = query<{ n: number }>(file, `select count(*) as n from workflows where status = 'completed'`);
      return expectedGraphRows - row!.n + (options.workflows - wf!.n);
    } catch {
      return Number.POSITIVE_INFINITY;
    }
  };
  try {
    for (let kill = 0; kill < options.kills; kill++) {
      const worker = startWorker(file, log, options);
      // Random instants: one in four while starting or enqueueing, the rest mid-handler or
      // mid-commit (while the worker runs at full speed, most instants fall inside a commit).
      if (kill % 4 !== 0) await worker.enqueued;
      await sleep(kill % 4 === 0 ? 200 + Math.random() * 600 : 20 + Math.random() * 400);
      worker.child.kill('SIGKILL');
      await worker.exited;
      if (kill % 10 === 9) say(`  ${kill + 1} kills, ${unfinished()} unfinished`);
    }
    const last = startWorker(file, log, options);
    const deadline = Date.now() + 180_000;
    while (unfinished() > 0) {
      if (Date.now() > deadline) throw new Error(`not finished after the last restart: ${unfinished()} unfinished`);
      await sleep(200);
    }
    last.child.kill('SIGTERM');
    await last.exited;

    const rows = query<{ id: number; type: string; status: string; attempts: number; started_at: number | null; completed_at: number | null; idempotency_key: string | null }>(
      file,
      'select id, type, status, attempts, started_at, completed_at, idempotency_key from promises',
    );
    const edges = query<{ parent_id: number; child_id: number }>(file, 'select parent_id, child_id from promise_dependencies');
    const byId = new Map(rows.map((row) => [row.id, row]));
    const graphRows = rows.filter((row) => row.type === 'work');
    const keys = new Set(graphRows.map((row) => row.idempotency_key));
    const lost = expectedGraphRows - keys.size;
    const stuck = rows.filter((row) => row.status !== 'completed').length;
    const orderViolations = edges.filter((edge) => {
      const parent = byId.get(edge.parent_id)!;
      const child = byId.get(edge.child_id)!;
      return child.started_at === null || parent.completed_at === null || child.started_at < parent.completed_at;
    }).length;
    // Completions: one per row; the log has one `done` per successful attempt plus re-runs of
    // attempts killed between their side effect and their commit (at-least-once handlers).
    const effects = fs.readFileSync(log, 'utf8').trim().split('\n').filter(Boolean).map((line) => line.split(' '));
    const successful = new Map<string, number>();
    for (const [, id, attempt] of effects) {
      const row = byId.get(Number(id));
      if (row && String(row.attempts) === attempt) successful.set(id!, (successful.get(id!) ?? 0) + 1);
    }
    const duplicatedCompletions = [...successful.values()].filter((n) => n > 1).length;
    const missingEffects = rows.filter((row) => row.status === 'completed' && !successful.has(String(row.id))).length;
    const workflowsCompleted = query<{ n: number }>(file, `select count(*) as n from workflows where status = 'completed'`)[0]!.n;
    return {
      promises: graphRows.length,
      workflowSteps: rows.filter((row) => row.type.startsWith('workflow:')).length,
      cronRuns: rows.filter((row) => row.type.startsWith('periodic:')).length,
      kills: options.kills,
      lost: lost + missingEffects,
      duplicatedCompletions,
      stuck,
      orderViolations,
      workflowsCompleted,
      reruns: effects.length - successful.size,
      seconds: Math.round((Date.now() - began) / 1000),
    };
  } finally {
    if (!options.keep) fs.rmSync(dir, { recursive: true, force: true });
    else say(`kept ${dir}`);
  }
}
