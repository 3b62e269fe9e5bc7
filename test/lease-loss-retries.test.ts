import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createEngine, type Engine } from '../src/index.js';
import { kill, spawnFixture } from './helpers/child.js';
import { tempDbPath, tempDir } from './helpers/temp-db.js';
import { until } from './helpers/wait.js';

// An attempt lost with its worker (SIGKILL) counts in `attempts` but does not spend `retries`:
// with `retries: 1` the promise still gets two failing runs after the crash.

const engines: Engine[] = [];
const workers: Array<ReturnType<typeof spawnFixture>> = [];
afterEach(async () => {
  for (const worker of workers.splice(0)) kill(worker.child, 'SIGKILL');
  for (const engine of engines.splice(0)) await engine.stop();
});

describe('a lost lease does not spend a retry', () => {
  it('retries: 1, the first worker SIGKILLed mid-attempt: the next worker still runs it twice before it fails', async () => {
    const database = tempDbPath();
    const log = path.join(tempDir(), 'busy.log');
    fs.writeFileSync(log, '');
    const producer = await createEngine({ database, changeCheckIntervalMs: 0 });
    engines.push(producer);
    producer.task('busy', async () => undefined, { retries: 1, retryDelay: 0 });
    const id = await producer.enqueue('busy', { ms: 60_000 });
    const first = spawnFixture('busy-worker.ts', [database, log, '30000', '1']);
    workers.push(first);
    await until(() => fs.readFileSync(log, 'utf8').includes('"event":"start"'), 30_000, 'the first worker to start it');
    first.child.kill('SIGKILL');
    await first.exited;

    const next = await createEngine({ database, changeCheckIntervalMs: 0 });
    engines.push(next);
    let runs = 0;
    next.task('busy', async () => {
      runs++;
      throw new Error(`run ${runs} fails`);
    }, { retries: 1, retryDelay: 0 });
    // The dead worker was on this host: its claim is taken back at start, without waiting for the lease.
    await next.start();
    await expect(next.result(id, { timeout: 15_000 })).rejects.toMatchObject({ code: 'PROMISE_FAILED' });
    expect(runs).toBe(2);
    const events = (await next.history(id)).map((line) => line.event);
    expect(events.filter((event) => event === 'LEASE_LOST')).toHaveLength(1);
    expect(events.filter((event) => event === 'FAIL')).toHaveLength(2);
    expect((await next.get(id))!.attempts).toBe(3);
  }, 60_000);
});
