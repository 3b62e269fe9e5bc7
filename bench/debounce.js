// What debounce costs an enqueue, over the built output (`dist/`), on fresh SQLite files:
//
//   npm run build && node bench/debounce.js            # 3 rounds, medians
//   node bench/debounce.js --rounds 1
//
// N = 5,000 sequential `enqueue` calls (one transaction each) of:
// - a plain type;
// - a debounced type, every enqueue a new key (the debounce lookup, then an insert);
// - a debounced type, every enqueue the same key (the lookup, then an update of the one pending row);
// and, on a started engine, 1,000 enqueues of one key within its period: how many runs follow.
// PROMISED_DIST=/path/to/dist/index.js runs the same workload against another build.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';

const SELF = fileURLToPath(import.meta.url);
const DIST = process.env.PROMISED_DIST ? path.resolve(process.env.PROMISED_DIST) : path.join(path.dirname(SELF), '..', 'dist', 'index.js');
const N = 5_000;
const { createEngine } = await import(pathToFileURL(DIST).href);

async function engineOn() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'promised-debounce-bench-'));
  const engine = await createEngine({ database: path.join(dir, 'bench.db'), changeCheckIntervalMs: 0, cleanupIntervalMs: 0 });
  return { engine, dir };
}

/** Microseconds per enqueue of N sequential enqueues; `keyOf(i)` is the payload's key. */
async function enqueueCost(options, keyOf) {
  const { engine, dir } = await engineOn();
  engine.task('t', async () => undefined, options);
  for (let i = 0; i < 200; i++) await engine.enqueue('t', { key: `warm-${keyOf(i)}` });
  const started = performance.now();
  for (let i = 0; i < N; i++) await engine.enqueue('t', { key: keyOf(i) });
  const micros = ((performance.now() - started) * 1_000) / N;
  const rows = (await engine.stats()).pending;
  await engine.stop();
  fs.rmSync(dir, { recursive: true, force: true });
  return { micros, rows };
}

/** 1,000 enqueues of one debounced key on a started engine, within its period: the runs that follow. */
async function oneKeyRuns() {
  const { engine, dir } = await engineOn();
  let runs = 0;
  engine.task('t', async () => void runs++, { debounce: { periodMs: 1_000 } });
  await engine.start();
  const started = performance.now();
  for (let i = 0; i < 1_000; i++) await engine.enqueue('t', { n: i });
  const enqueueMs = performance.now() - started;
  await new Promise((resolve) => setTimeout(resolve, 1_500));
  await engine.idle();
  await engine.stop();
  fs.rmSync(dir, { recursive: true, force: true });
  return { runs, enqueueMs };
}

const debounce = { debounce: { periodMs: 60_000, key: (payload) => payload.key } };
const roundsIndex = process.argv.indexOf('--rounds');
const rounds = roundsIndex > 0 ? Number(process.argv[roundsIndex + 1]) : 3;
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const results = { plain: [], distinct: [], same: [] };
let rowCounts;
for (let round = 0; round < rounds; round++) {
  const plain = await enqueueCost({}, (i) => `k${i}`);
  const distinct = await enqueueCost(debounce, (i) => `k${i}`);
  const same = await enqueueCost(debounce, () => 'one');
  results.plain.push(plain.micros);
  results.distinct.push(distinct.micros);
  results.same.push(same.micros);
  rowCounts = { plain: plain.rows, distinct: distinct.rows, same: same.rows };
}
const burst = await oneKeyRuns();
const plain = median(results.plain);
const line = (name, micros, rows) => `  ${name.padEnd(34)} ${micros.toFixed(1).padStart(6)} µs/enqueue  ${(micros / plain).toFixed(2)}× plain  (${rows} pending rows after)`;
console.log(`enqueue with and without debounce (N = ${N}, sequential, SQLite, ${rounds} round(s), median; load ${os.loadavg()[0].toFixed(2)})`);
console.log(line('plain', plain, rowCounts.plain));
console.log(line('debounced, a new key each time', median(results.distinct), rowCounts.distinct));
console.log(line('debounced, one key (merged)', median(results.same), rowCounts.same));
console.log(`  1,000 enqueues of one debounced key in ${Math.round(burst.enqueueMs)} ms (period 1 s): ${burst.runs} run(s)`);
