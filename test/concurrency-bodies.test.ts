import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createEngine } from '../src/index.js';
import { kill, spawnFixture } from './helpers/child.js';
import { tempDbPath, tempDir } from './helpers/temp-db.js';
import { until } from './helpers/wait.js';

// `concurrency` bounds handler bodies, not signals: a body that ignores its aborted signal (on a
// timeout or a cancel) keeps its slot until it returns, and a retry never runs beside its own
// abandoned attempt. Proven from outside: each body logs its start and end in a worker process,
// and the test counts overlaps.

interface Line {
  id: string;
  attempt: number;
  event: 'start' | 'end';
  pid: number;
  t: number;
}

const workers: Array<ReturnType<typeof spawnFixture>> = [];
afterEach(() => {
  for (const worker of workers.splice(0)) kill(worker.child, 'SIGKILL');
});

function readLog(file: string): Line[] {
  return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line) as Line);
}

/** The most bodies running at once, from their start and end lines. */
function maxOverlap(lines: Line[]): number {
  let running = 0;
  let most = 0;
  for (const line of [...lines].sort((a, b) => a.t - b.t || (a.event === 'end' ? -1 : 1))) {
    running += line.event === 'start' ? 1 : -1;
    most = Math.max(most, running);
  }
  return most;
}

describe('concurrency counts bodies that ignore their signal', () => {
  async function fleet() {
    const database = tempDbPath();
    const log = path.join(tempDir(), 'bodies.log');
    fs.writeFileSync(log, '');
    const producer = await createEngine({ database, changeCheckIntervalMs: 20 });
    // Attempts are stored at enqueue, from the enqueuer's task options: the same as the worker's.
    producer.task('times-out', async () => undefined, { timeout: 50, retries: 1, retryDelay: 0 });
    producer.task('cancelled', async () => undefined);
    const worker = spawnFixture('stubborn-worker.ts', [database, log, '2']);
    workers.push(worker);
    await worker.waitForLine('started', 30_000);
    return { producer, log };
  }

  it('on timeouts: never more than `concurrency` bodies at once, and a retry starts only after its attempt’s body returned', async () => {
    const { producer, log } = await fleet();
    try {
      const ids = await producer.enqueueMany(Array.from({ length: 20 }, () => ({ type: 'times-out', payload: { ms: 150 } })));
      for (const id of ids) await expect(producer.result(id, { timeout: 60_000 })).rejects.toMatchObject({ error: { code: 'TIMEOUT' } });
      await until(() => readLog(log).filter((line) => line.event === 'end').length === 40, 10_000, 'every body to end');
      const lines = readLog(log);
      expect(lines.filter((line) => line.event === 'start')).toHaveLength(40);
      expect(maxOverlap(lines)).toBe(2);
      for (const id of ids) {
        const firstEnd = lines.find((line) => line.id === id && line.attempt === 1 && line.event === 'end')!;
        const retryStart = lines.find((line) => line.id === id && line.attempt === 2 && line.event === 'start')!;
        expect(retryStart.t).toBeGreaterThanOrEqual(firstEnd.t);
      }
    } finally {
      await producer.stop();
    }
  }, 90_000);

  it('on cancels: a cancelled body keeps its slot until it returns', async () => {
    const { producer, log } = await fleet();
    try {
      const ids = await producer.enqueueMany(Array.from({ length: 10 }, () => ({ type: 'cancelled', payload: { ms: 300 } })));
      for (const id of ids) {
        await until(() => readLog(log).some((line) => line.id === id && line.event === 'start'), 30_000, `promise ${id} to start`);
        await producer.cancel(id);
      }
      await until(() => readLog(log).filter((line) => line.event === 'end').length === 10, 10_000, 'every body to end');
      expect(maxOverlap(readLog(log))).toBeLessThanOrEqual(2);
      for (const id of ids) expect((await producer.get(id))!.error).toMatchObject({ code: 'CANCELLED' });
    } finally {
      await producer.stop();
    }
  }, 90_000);
});
