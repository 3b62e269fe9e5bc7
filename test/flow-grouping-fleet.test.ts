import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createEngine, type Engine } from '../src/index.js';
import { engineBackends } from './helpers/backends.js';
import { kill, spawnFixture } from './helpers/child.js';
import { tempDir } from './helpers/temp-db.js';
import { until } from './helpers/wait.js';
import { BATCHED, DEBOUNCED } from './fixtures/grouping-options.js';

// Debounce and batches across processes, proven from outside: two worker processes log every
// run; a debounced key enqueued from both of them (and from the test) runs once, with the last
// payload; 300 batched promises run in batches of exactly 10, each promise in exactly one.

type Line = { event: 'run'; id: string; key: string; n: string; pid: number } | { event: 'batch'; ids: string[]; xs: number[]; pid: number };

const engines: Engine[] = [];
const workers: Array<ReturnType<typeof spawnFixture>> = [];
afterEach(async () => {
  for (const worker of workers.splice(0)) kill(worker.child, 'SIGKILL');
  for (const engine of engines.splice(0)) await engine.stop();
});

for (const backend of engineBackends) describe.skipIf(backend.skip)(`debounce and batch across processes on ${backend.name}`, () => {
  it('two workers: a key debounced from three processes runs once with the last payload; no batch is split or run twice', async () => {
    const database = await backend.fresh();
    const log = path.join(tempDir(), 'grouping.log');
    fs.writeFileSync(log, '');
    const producer = await createEngine({ database, changeCheckIntervalMs: 10, stopTimeoutMs: 5_000 });
    engines.push(producer);
    producer.task('debounced', async () => undefined, DEBOUNCED);
    producer.task('batched', async () => undefined, BATCHED);
    const fleet = [0, 1].map(() => spawnFixture('grouping-worker.ts', [database, log]));
    workers.push(...fleet);
    await Promise.all(fleet.map((worker) => worker.waitForLine('started', 30_000)));
    fs.writeFileSync(`${log}.go`, '');
    // In commits of 7 while both workers claim: a batch forms across commits, never before 10 are runnable.
    const batchIds: string[] = [];
    for (let x = 0; x < 300; x += 7) {
      batchIds.push(...(await producer.enqueueMany(Array.from({ length: Math.min(7, 300 - x) }, (_, i) => ({ type: 'batched', payload: { x: x + i } })))));
      // Longer than the workers' change check: they see (and must not take) a key with 7 runnable.
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    await until(() => fleet.every((worker) => worker.lines.some((line) => line.startsWith('enqueued '))), 20_000, 'both bursts');
    const bursts = fleet.map((worker) => JSON.parse(worker.lines.find((line) => line.startsWith('enqueued '))!.slice('enqueued '.length)) as Record<string, string[]>);
    const keys = ['k0', 'k1', 'k2', 'k3', 'k4'];
    const idOf: Record<string, string> = {};
    for (const key of keys) {
      idOf[key] = await producer.enqueue('debounced', { key, n: 'last' });
      // Every enqueue of a key, from any process, returned the id of its one promise.
      expect(new Set([...bursts[0]![key]!, ...bursts[1]![key]!, idOf[key]])).toEqual(new Set([idOf[key]]));
    }
    for (const key of keys) expect(await producer.result(idOf[key]!, { timeout: 30_000 })).toBe('last');
    const results = await Promise.all(batchIds.map((id) => producer.result(id, { timeout: 60_000 })));
    expect(results).toEqual(Array.from({ length: 300 }, (_, x) => x * 2));

    const lines = fs.readFileSync(log, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line) as Line);
    const runs = lines.filter((line) => line.event === 'run');
    expect(runs.map((run) => `${run.key}:${run.n}`).sort()).toEqual(keys.map((key) => `${key}:last`));
    expect((await producer.list({ type: 'debounced', limit: 100 })).length).toBe(5);
    const batches = lines.filter((line) => line.event === 'batch');
    expect(batches).toHaveLength(30);
    for (const batch of batches) expect(batch.ids).toHaveLength(10);
    const seen = batches.flatMap((batch) => batch.ids);
    expect(new Set(seen).size).toBe(300);
    expect(new Set(seen)).toEqual(new Set(batchIds));
    for (const id of batchIds) expect((await producer.get(id))!.attempts).toBe(1);
  }, 120_000);
});
