// Flow control's cost and accuracy, over the built output (`dist/`), each case in a fresh child
// process on a fresh SQLite file, in one run so the figures compare:
//
//   node bench/flow-control.js            # after npm run build
//   node bench/flow-control.js --runs 3
//
// - throughput at concurrency 10 of 10,000 no-op promises with no limits, and spread over 1,000
//   keys with `concurrency: { limit: 1 }`, as a ratio (goal ≥ 0.9×);
// - a rate limit of 100 starts/s held for 10 s: the achieved rate, and the most starts seen in
//   any one-second window (a sliding window allows at most 100).
// PROMISED_DIST=/path/to/dist/index.js runs the same workload against another build.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';

const SELF = fileURLToPath(import.meta.url);
const DIST = process.env.PROMISED_DIST ? path.resolve(process.env.PROMISED_DIST) : path.join(path.dirname(SELF), '..', 'dist', 'index.js');
const N = 10_000;
const KEYS = 1_000;
const RATE = 100;
const RATE_SECONDS = 10;

async function engineOn(options) {
  const { createEngine } = await import(pathToFileURL(DIST).href);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'promised-flow-bench-'));
  const engine = await createEngine({ database: path.join(dir, 'bench.db'), changeCheckIntervalMs: 0, cleanupIntervalMs: 0, ...options });
  return { engine, dir };
}

/** Runs N no-op promises at concurrency 10, with or without a per-key limit; jobs per second. */
async function throughput(keyed) {
  const { engine, dir } = await engineOn({ concurrency: 10 });
  let done = 0;
  let finished;
  const all = new Promise((resolve) => (finished = resolve));
  engine.task('noop', async () => {
    if (++done === N) finished();
  }, keyed ? { concurrency: { limit: 1, key: (payload) => payload.key } } : {});
  for (let i = 0; i < N; i += 1_000) {
    await engine.enqueueMany(Array.from({ length: Math.min(1_000, N - i) }, (_, j) => ({ type: 'noop', payload: { key: `k${(i + j) % KEYS}` } })));
  }
  const started = performance.now();
  await engine.start();
  await all;
  const seconds = (performance.now() - started) / 1_000;
  await engine.stop();
  fs.rmSync(dir, { recursive: true, force: true });
  return N / seconds;
}

/** Holds a rate limit of RATE/s for RATE_SECONDS with a backlog larger than it: achieved rate and the densest second. */
async function rate() {
  const { engine, dir } = await engineOn({ concurrency: 10 });
  const starts = [];
  engine.task('limited', async () => void starts.push(performance.now()), { rateLimit: { limit: RATE, periodMs: 1_000 } });
  await engine.enqueueMany(Array.from({ length: RATE * (RATE_SECONDS + 2) }, () => ({ type: 'limited' })));
  await engine.start();
  const from = performance.now();
  await new Promise((resolve) => setTimeout(resolve, RATE_SECONDS * 1_000));
  const window = starts.filter((t) => t >= from && t < from + RATE_SECONDS * 1_000);
  // The limit holds for claims (each row's startedAt, the claim's time); a handler starts a few
  // ms after its claim, so windows of handler starts can look denser than the claims were.
  const claimedAt = (await engine.list({ limit: 10_000 })).filter((record) => record.startedAt).map((record) => record.startedAt.getTime());
  await engine.stop();
  fs.rmSync(dir, { recursive: true, force: true });
  return { achievedPerSecond: window.length / RATE_SECONDS, densestClaims: densest(claimedAt), densestHandlerStarts: densest(starts) };
}

/** The most timestamps in any half-open window of one second. */
function densest(times) {
  const sorted = [...times].sort((a, b) => a - b);
  let most = 0;
  for (let first = 0, last = 0; last < sorted.length; last++) {
    while (sorted[last] - sorted[first] >= 1_000) first++;
    most = Math.max(most, last - first + 1);
  }
  return most;
}

const CASES = { plain: () => throughput(false), keyed: () => throughput(true), rate };

if (process.argv[2] === '--case') {
  const result = await CASES[process.argv[3]]();
  process.stdout.write(JSON.stringify(result));
  process.exit(0);
}

function inChild(name) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SELF, '--case', name], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk) => (out += chunk));
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`${name} exited ${code}`))));
  });
}

const runsIndex = process.argv.indexOf('--runs');
const runs = runsIndex > 0 ? Number(process.argv[runsIndex + 1]) : 3;
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const plain = [];
const keyed = [];
for (let run = 0; run < runs; run++) {
  plain.push(await inChild('plain'));
  keyed.push(await inChild('keyed'));
}
const limited = await inChild('rate');
const load = os.loadavg()[0].toFixed(2);
console.log(`flow control (N = ${N}, concurrency 10, ${runs} runs, median; load ${load})`);
console.log(`  no limits:                 ${Math.round(median(plain))} promises/s`);
console.log(`  ${KEYS} keys × limit 1:       ${Math.round(median(keyed))} promises/s  (${(median(keyed) / median(plain)).toFixed(2)}× no limits; goal ≥ 0.9×)`);
console.log(`  rate limit ${RATE}/s for ${RATE_SECONDS} s: ${limited.achievedPerSecond.toFixed(1)}/s achieved (${((limited.achievedPerSecond / RATE - 1) * 100).toFixed(1)} %), most claims in any 1 s window ${limited.densestClaims} (limit ${RATE}); most handler starts in any 1 s window ${limited.densestHandlerStarts}`);
