import fs from 'node:fs';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { createEngine } from '../src/index.js';
import { spawnCli, stopChild, tasksModule } from './fixtures/cli-run.js';
import { tempDir } from './helpers/temp-db.js';
import { until } from './helpers/wait.js';

const PROMISES = 5_000;
const BATCH = 250;

const children: Array<ReturnType<typeof spawnCli>> = [];
afterEach(() => {
  for (const worker of children.splice(0)) stopChild(worker.child);
});

describe('many worker processes on one SQLite file', () => {
  it.each([2, 4])('%i workers process 5,000 promises: each completed exactly once, none claimed twice', async (count) => {
    const dir = tempDir();
    const db = path.join(dir, 'promised.db');
    const side = path.join(dir, 'side-effects.txt');

    // Each worker its own PID file: that is how several workers of one database are started.
    const workers = Array.from({ length: count }, (_, index) => {
      const worker = spawnCli(['worker', 'start', tasksModule, '--foreground', '--db', db, '--pid-file', `${db}.worker-${index}.pid`, '--concurrency', '8'], {
        cwd: dir,
        env: { PROMISED_LOG_LEVEL: 'info' },
      });
      children.push(worker);
      return worker;
    });
    await until(() => workers.every((worker) => worker.stderr().includes('"msg":"worker started"')), 20_000, 'every worker to start');

    // Enqueued while the workers run, in many transactions from another process: the workers
    // learn of each batch through the file's change counter, not by polling tables.
    const producer = await createEngine({ database: db, changeCheckIntervalMs: 0 });
    producer.task('append', async () => undefined);
    const ids: string[] = [];
    for (let start = 0; start < PROMISES; start += BATCH) {
      ids.push(...(await producer.enqueueMany(Array.from({ length: BATCH }, () => ({ type: 'append', payload: { file: side } })))));
    }
    await producer.stop();

    const raw = new BetterSqlite3(db, { readonly: true });
    try {
      const completed = raw.prepare(`select count(*) from promises where status = 'completed'`).pluck();
      await until(() => (completed.get() as number) === PROMISES, 60_000, `all ${PROMISES} promises to complete`);

      for (const worker of workers) worker.child.kill('SIGTERM');
      expect(await Promise.all(workers.map((worker) => worker.exited))).toEqual(workers.map(() => 0));

      const lines = fs.readFileSync(side, 'utf8').split('\n').filter(Boolean);
      const runs = lines.map((line) => line.split(' ')[0]!);
      // Every promise's side effect happened, and happened once.
      expect(runs).toHaveLength(PROMISES);
      expect(new Set(runs).size).toBe(PROMISES);
      expect(new Set(runs)).toEqual(new Set(ids));
      // The work was shared between processes. Not necessarily by all of them: the handler is
      // instant, and on a loaded machine one process that is scheduled less may find nothing left.
      const byProcess = new Map<string, number>();
      for (const line of lines) byProcess.set(line.split(' ')[1]!, (byProcess.get(line.split(' ')[1]!) ?? 0) + 1);
      expect(byProcess.size).toBeGreaterThanOrEqual(2);
      expect(byProcess.size).toBeLessThanOrEqual(count);

      // And the database agrees: every promise completed on its first and only claim.
      const rows = raw.prepare(`select status, attempts, count(*) as n from promises group by status, attempts`).all();
      expect(rows).toEqual([{ status: 'completed', attempts: 1, n: PROMISES }]);
    } finally {
      raw.close();
    }
  });
});
