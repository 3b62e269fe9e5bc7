import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { createEngine, type Engine, type GraphNode } from '../src/index.js';
import { kill, spawnFixture } from './helpers/child.js';
import { createFreshDatabase } from './helpers/postgres.js';
import { tempDir } from './helpers/temp-db.js';
import { until } from './helpers/wait.js';

// Several worker processes on one PostgreSQL database: every promise runs exactly once, in
// dependency order, whichever process claims it.

const adminUrl = inject('postgresAdminUrl');
if (!adminUrl) console.warn(`PostgreSQL worker tests skipped: ${inject('postgresSkipReason')}`);

const children: Array<ReturnType<typeof spawnFixture>> = [];
const engines: Engine[] = [];
afterEach(async () => {
  for (const engine of engines.splice(0)) await engine.stop();
  for (const worker of children.splice(0)) kill(worker.child, 'SIGKILL');
});

const CHAINS = 300; // chains of 4: a → b → c → d
const FANS = 100; // 8 parts → 1 join

describe.skipIf(!adminUrl)('worker processes on PostgreSQL', () => {
  it('4 workers over 2,100 promises with dependencies: each runs once, after its parents', async () => {
    const database = await createFreshDatabase(adminUrl!);
    const producer = await createEngine({ database, cleanupIntervalMs: 0 });
    engines.push(producer);
    producer.task('work', async () => null);
    const logs = tempDir();
    const workers = [0, 1, 2, 3].map((i) => spawnFixture('pg-worker.ts', [database, path.join(logs, `worker-${i}.log`)]));
    children.push(...workers);
    await Promise.all(workers.map((worker) => worker.waitForLine('started', 30_000)));

    // Enqueued while the workers run: they are woken by NOTIFY, not by polling.
    const parentsOf = new Map<string, string[]>();
    let n = 0;
    for (let batch = 0; batch < 10; batch++) {
      const graph: Record<string, GraphNode> = {};
      for (let c = 0; c < CHAINS / 10; c++) {
        const names = ['a', 'b', 'c', 'd'].map((step) => `chain${c}${step}`);
        names.forEach((name, i) => (graph[name] = { type: 'work', payload: { n: n++ }, dependsOn: i === 0 ? [] : [names[i - 1]!] }));
      }
      for (let f = 0; f < FANS / 10; f++) {
        const parts = Array.from({ length: 8 }, (_, i) => `fan${f}part${i}`);
        for (const part of parts) graph[part] = { type: 'work', payload: { n: n++ } };
        graph[`fan${f}join`] = { type: 'work', payload: { n: n++ }, dependsOn: parts };
      }
      const ids = await producer.enqueueGraph(graph);
      for (const [name, node] of Object.entries(graph)) parentsOf.set(ids[name]!, (node.dependsOn ?? []).map((parent) => ids[parent]!));
    }
    const total = parentsOf.size;
    expect(total).toBe(CHAINS * 4 + FANS * 9);

    await until(async () => (await producer.stats()).completed === total, 45_000, `all ${total} completed`);
    await Promise.all(workers.map(async (worker) => {
      kill(worker.child, 'SIGTERM');
      expect(await worker.exited).toBe(0);
    }));

    const runs = new Map<string, Array<{ pid: string; at: number }>>();
    for (const file of fs.readdirSync(logs)) {
      for (const line of fs.readFileSync(path.join(logs, file), 'utf8').split('\n').filter(Boolean)) {
        const [id, pid, at] = line.split(' ') as [string, string, string];
        runs.set(id, [...(runs.get(id) ?? []), { pid, at: Number(at) }]);
      }
    }
    expect(runs.size).toBe(total);
    expect([...runs.values()].filter((list) => list.length !== 1)).toEqual([]);
    // Every process took a share of the work.
    expect(new Set([...runs.values()].map((list) => list[0]!.pid)).size).toBe(4);
    for (const [id, parents] of parentsOf) {
      for (const parent of parents) expect(runs.get(id)![0]!.at).toBeGreaterThanOrEqual(runs.get(parent)![0]!.at);
    }
    const stats = await producer.stats();
    expect(stats).toMatchObject({ completed: total, failed: 0, pending: 0, waiting: 0, in_progress: 0 });
    // Claimed once each: one attempt, no lease ever lost.
    const rows = await producer.list({ type: 'work', limit: total });
    expect(rows.filter((row) => row.attempts !== 1)).toEqual([]);
  });

  it('a worker SIGKILLed mid-run: the others finish its promises after its leases expire', async () => {
    const database = await createFreshDatabase(adminUrl!);
    const producer = await createEngine({ database, cleanupIntervalMs: 0 });
    engines.push(producer);
    producer.task('work', async () => null);
    const logs = tempDir();
    process.env.LEASE_MS = '1000';
    const workers = [0, 1, 2].map((i) => spawnFixture('pg-worker.ts', [database, path.join(logs, `worker-${i}.log`)]));
    delete process.env.LEASE_MS;
    children.push(...workers);
    await Promise.all(workers.map((worker) => worker.waitForLine('started', 30_000)));
    const total = 600;
    const ids = await producer.enqueueMany(Array.from({ length: total }, (_, n) => ({ type: 'work', payload: { n } })));
    await until(async () => (await producer.stats()).completed >= 100, 20_000, 'a first share done');
    kill(workers[0]!.child, 'SIGKILL');
    await until(async () => (await producer.stats()).completed === total, 30_000, `all ${total} completed`);
    const ran = new Set<string>();
    for (const file of fs.readdirSync(logs)) {
      for (const line of fs.readFileSync(path.join(logs, file), 'utf8').split('\n').filter(Boolean)) ran.add(line.split(' ')[0]!);
    }
    // At least once each (a run cut by the kill runs again elsewhere), completed exactly once.
    expect(ids.filter((id) => !ran.has(id))).toEqual([]);
    expect(await producer.stats()).toMatchObject({ completed: total, failed: 0, in_progress: 0 });
  });
});
