import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli, spawnCli, stopChild } from './fixtures/cli-run.js';
import { tempDir } from './helpers/temp-db.js';
import { until } from './helpers/wait.js';

// The README's promise: `npm run demo`, Ctrl-C halfway, run it again, and it resumes without
// redoing what was completed. The real command, interrupted with a real SIGINT.

const children: Array<ReturnType<typeof spawnCli>> = [];
afterEach(() => {
  for (const run of children.splice(0)) stopChild(run.child);
});

interface Row {
  id: number;
  type: string;
  status: string;
  attempts: number;
  completed_at: number | null;
}

function rows(file: string): Row[] {
  const db = new BetterSqlite3(file, { readonly: true });
  try {
    return db.prepare(`select id, type, status, attempts, completed_at from promises order by id`).all() as Row[];
  } finally {
    db.close();
  }
}

describe('promised demo', () => {
  it('interrupted with Ctrl-C, run again: resumes the rest and redoes nothing completed', async () => {
    const file = path.join(tempDir(), 'promised.db');
    const first = spawnCli(['demo', '--db', file]);
    children.push(first);
    // Interrupt once the parallel reviews are done but the chain and the workflow are not.
    await until(() => (first.stdout().match(/review \S+\s+completed/g) ?? []).length === 3, 30_000, 'the three reviews to complete');
    first.child.kill('SIGINT');
    expect(await first.exited).toBe(130);
    expect(first.stdout()).toContain('Interrupted: stopping.');

    const before = rows(file);
    const doneBefore = before.filter((row) => row.status === 'completed');
    const unfinishedBefore = before.filter((row) => row.status !== 'completed' && row.status !== 'failed');
    expect(doneBefore.length).toBeGreaterThanOrEqual(3);
    expect(unfinishedBefore.length).toBeGreaterThan(0);

    const second = await runCli(['demo', '--db', file], { timeoutMs: 60_000 });
    expect(second.code).toBe(0);
    expect(second.stdout).toMatch(new RegExp(`Resumed ${unfinishedBefore.length} unfinished promises`));
    expect(second.stdout).toMatch(/All \d+ promises and workflows completed\./);
    expect(second.stdout).toMatch(/Workflow demo-ci #\d+ completed: \{"setup":"environment for demo-1"/);

    const after = rows(file);
    // Nothing new was started for the same run, and every promise finished.
    expect(after.map((row) => row.id)).toEqual(expect.arrayContaining(before.map((row) => row.id)));
    expect(after.filter((row) => row.status !== 'completed')).toEqual([]);
    // What had completed was not run again: same attempt count, same completion time.
    for (const done of doneBefore) expect(after.find((row) => row.id === done.id)).toEqual(done);
  });
});
