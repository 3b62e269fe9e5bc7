// The cost of synchronous=FULL against NORMAL (SQLite, WAL): enqueue one by one and process at
// concurrency 10, same workload, same run. Run: npm run build && node bench/durability.js [jobs]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createEngine } from '../dist/index.js';

const jobs = Number(process.argv[2] ?? 5_000);

async function measure(synchronous) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'promised-durability-'));
  const engine = await createEngine({ database: path.join(dir, 'bench.db'), synchronous, concurrency: 10, changeCheckIntervalMs: 0, cleanupIntervalMs: 0 });
  let done = 0;
  let finished;
  const allDone = new Promise((resolve) => (finished = resolve));
  engine.task('noop', async () => {
    if (++done === jobs) setImmediate(finished);
  });
  let started = performance.now();
  for (let i = 0; i < jobs; i++) await engine.enqueue('noop', { i });
  const enqueuePerSecond = jobs / ((performance.now() - started) / 1000);
  started = performance.now();
  await engine.start();
  await allDone;
  await new Promise((resolve) => setTimeout(resolve, 50));
  const processPerSecond = jobs / ((performance.now() - started) / 1000);
  const stats = await engine.stats();
  await engine.stop();
  fs.rmSync(dir, { recursive: true, force: true });
  if (stats.completed !== jobs || done !== jobs) throw new Error(`${synchronous}: ${stats.completed} completed, ${done} handled, expected ${jobs}`);
  return { synchronous, enqueuePerSecond: Math.round(enqueuePerSecond), processPerSecond: Math.round(processPerSecond) };
}

const results = [];
for (let run = 0; run < 3; run++) for (const mode of ['NORMAL', 'FULL']) results.push(await measure(mode));
const median = (mode, key) => results.filter((r) => r.synchronous === mode).map((r) => r[key]).sort((a, b) => a - b)[1];
const table = ['NORMAL', 'FULL'].map((mode) => ({ synchronous: mode, enqueuePerSecond: median(mode, 'enqueuePerSecond'), processC10PerSecond: median(mode, 'processPerSecond') }));
console.table(table);
console.log(JSON.stringify({ jobs, load: fs.readFileSync('/proc/loadavg', 'utf8').split(' ')[0], table, fullOverNormal: { enqueue: (table[1].enqueuePerSecond / table[0].enqueuePerSecond).toFixed(2), process: (table[1].processC10PerSecond / table[0].processC10PerSecond).toFixed(2) } }));
