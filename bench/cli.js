// Benchmark of the `promised` command over the built output (run `npm run build` first):
//   node bench/cli.js [--runs 30] [--promises 5000] [--startup-only]
// 1. What a shell or a git hook pays: wall time of `promised stats` and `promised enqueue` as
//    fresh processes, with a worker running (the usual case), beside `node -e 0` measured in the
//    same run, interleaved (node -e 0, stats, enqueue, node -e 0, ...) so all three see the same
//    machine; each is printed as p50/p95 and as a ratio to and a difference from `node -e 0`.
//    Then `enqueue --tasks` without a worker (the synchronous fallback), interleaved the same way.
//    The first run of each warms the file cache and Node's compile cache, as a hook's second run.
// 2. Throughput of 1, 2 and 4 worker processes on one SQLite file: N no-op promises enqueued
//    before the workers start; the rate is N over the span from the first claim to the last
//    completion (from the rows' own timestamps), and the wall time includes process start-up.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';

const root = path.resolve(import.meta.dirname, '..');
const main = path.join(root, 'dist/cli/main.js');
const tasks = path.join(root, 'test/fixtures/cli-tasks.mjs');
const { createEngine } = await import(path.join(root, 'dist/index.js'));

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const index = args.indexOf(name);
  return index === -1 ? fallback : Number(args[index + 1]);
};
const RUNS = option('--runs', 30);
const PROMISES = option('--promises', 5_000);
const STARTUP_ONLY = args.includes('--startup-only');
const env = { ...process.env, PROMISED_LOG_LEVEL: 'warn' };
delete env.PROMISED_DB;

function workspace() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'promised-bench-cli-'));
  return { dir, db: path.join(dir, 'promised.db') };
}

function cli(argv, cwd) {
  const result = spawnSync(process.execPath, [main, ...argv], { cwd, env, encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`promised ${argv.join(' ')} exited ${result.status}: ${result.stderr}`);
  return result.stdout;
}

function timed(command, argv, cwd) {
  const start = process.hrtime.bigint();
  const result = spawnSync(command, argv, { cwd, env, stdio: 'ignore' });
  if (result.status !== 0) throw new Error(`${command} ${argv.join(' ')} exited ${result.status}`);
  return Number(process.hrtime.bigint() - start) / 1e6;
}

function summary(samples) {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
  return { p50: at(0.5), p95: at(0.95), mean: sorted.reduce((a, b) => a + b, 0) / sorted.length };
}

const ms = (value) => `${value.toFixed(0).padStart(5)} ms`;

function printLatency(label, samples, baseline) {
  const { p50, p95, mean } = summary(samples);
  let line = `  ${label.padEnd(48)} p50 ${ms(p50)}   p95 ${ms(p95)}   mean ${ms(mean)}`;
  if (baseline) {
    const base = summary(baseline).p50;
    line += `   p50 ${(p50 / base).toFixed(2)}x node -e 0, ${p50 - base >= 0 ? '+' : ''}${(p50 - base).toFixed(0)} ms`;
  }
  console.log(line);
}

async function startupLatency() {
  console.log(`promised as a fresh process, ${RUNS} runs each, interleaved with node -e 0 (${os.cpus().length} cores, Node ${process.version})`);
  const { dir, db } = workspace();
  const baseline = [];
  const stats = [];
  const withWorker = [];
  const fallbackBaseline = [];
  const fallback = [];
  cli(['worker', 'start', tasks, '--db', db], dir);
  try {
    // Warm the file cache and the compile cache: a hook's first run ever is not the usual case.
    timed(process.execPath, [main, 'enqueue', 'noop', '--db', db], dir);
    timed(process.execPath, [main, 'stats', '--db', db], dir);
    for (let run = 0; run < RUNS; run++) {
      baseline.push(timed(process.execPath, ['-e', '0'], dir));
      stats.push(timed(process.execPath, [main, 'stats', '--db', db], dir));
      withWorker.push(timed(process.execPath, [main, 'enqueue', 'noop', '{"n":1}', '--db', db], dir));
    }
  } finally {
    cli(['worker', 'stop', '--db', db], dir);
  }
  for (let run = 0; run < RUNS; run++) {
    fallbackBaseline.push(timed(process.execPath, ['-e', '0'], dir));
    fallback.push(timed(process.execPath, [main, 'enqueue', 'noop', '{"n":1}', '--tasks', tasks, '--db', db], dir));
  }
  fs.rmSync(dir, { recursive: true, force: true });
  printLatency('node -e 0', baseline);
  printLatency('promised stats (worker running)', stats, baseline);
  printLatency('promised enqueue (worker running)', withWorker, baseline);
  printLatency('promised enqueue --tasks (no worker: runs here)', fallback, fallbackBaseline);
  return { baseline: summary(baseline), stats: summary(stats), withWorker: summary(withWorker), fallback: summary(fallback) };
}

async function throughput(workers) {
  const { dir, db } = workspace();
  const producer = await createEngine({ database: db, changeCheckIntervalMs: 0 });
  producer.task('noop', async () => undefined);
  for (let start = 0; start < PROMISES; start += 1_000) {
    await producer.enqueueMany(Array.from({ length: Math.min(1_000, PROMISES - start) }, () => ({ type: 'noop', payload: {} })));
  }
  await producer.stop();

  const raw = new BetterSqlite3(db, { readonly: true });
  const completed = raw.prepare(`select count(*) from promises where status = 'completed'`).pluck();
  const started = process.hrtime.bigint();
  const children = Array.from({ length: workers }, (_, index) =>
    spawn(process.execPath, [main, 'worker', 'start', tasks, '--foreground', '--db', db, '--pid-file', `${db}.worker-${index}.pid`, '--concurrency', '8'], {
      cwd: dir,
      env,
      stdio: 'ignore',
    }),
  );
  while (completed.get() < PROMISES) await new Promise((resolve) => setTimeout(resolve, 10));
  const wallMs = Number(process.hrtime.bigint() - started) / 1e6;
  const span = raw.prepare(`select min(started_at) as first, max(completed_at) as last, max(attempts) as attempts from promises`).get();
  raw.close();
  await Promise.all(children.map((child) => new Promise((resolve) => child.once('exit', resolve).kill('SIGTERM'))));
  fs.rmSync(dir, { recursive: true, force: true });
  const spanMs = span.last - span.first;
  const rate = PROMISES / (spanMs / 1000);
  console.log(
    `  ${String(workers).padStart(1)} worker process${workers === 1 ? ' ' : 'es'}: ${PROMISES} promises in ${ms(spanMs)} of work (${rate.toFixed(0).padStart(5)}/s), ${ms(wallMs)} wall with start-up; max attempts ${span.attempts}`,
  );
  return { workers, spanMs, wallMs, rate };
}

await startupLatency();
if (STARTUP_ONLY) process.exit(0);
console.log(`\nthroughput of worker processes on one SQLite file, ${PROMISES} no-op promises enqueued beforehand, concurrency 8 each`);
for (const workers of [1, 2, 4]) await throughput(workers);
