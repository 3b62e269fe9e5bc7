// The benchmark: a fixed workload over the built output (`dist/`), printing a table and writing
// bench/results/latest.json. Every measurement runs in a fresh child process on a fresh temporary
// database, checks its own correctness (each job seen exactly once, every row in the state it
// must be in), and the throughput ones are repeated (`--runs N`, default 3) and reported as the
// median, as the peers' published figures are.
//
//   npm run bench                 # builds, then runs everything
//   node bench/run.js --runs 5    # more repetitions
//   node bench/run.js --only raw,latency
//   node bench/run.js --out /tmp/other.json
//
// PROMISED_DIST=/path/to/dist/index.js (and PROMISED_COMMIT=<sha>) runs the same workload
// against another build, e.g. a clean checkout while src/ is being edited.

import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';

const SELF = fileURLToPath(import.meta.url);
const BENCH_DIR = path.dirname(SELF);
const RESULTS_DIR = path.join(BENCH_DIR, 'results');
const DIST = process.env.PROMISED_DIST ? path.resolve(process.env.PROMISED_DIST) : path.join(BENCH_DIR, '..', 'dist', 'index.js');

const N = 10_000;
const BULK_CHUNK = 1_000;
const LATENCY_RATE = 500; // jobs per second
const LATENCY_SECONDS = 4;
const REHYDRATE = { pending: 90_000, waiting: 9_000, inProgress: 1_000, chunk: 5_000 };
const REHYDRATE_TOTAL = REHYDRATE.pending + REHYDRATE.waiting + REHYDRATE.inProgress;

// Peers' published figures (PEERS.md, 2026-11-23), not measured in this run.
const PEERS = {
  fastestProcessC10: { name: 'plainjob', perSecond: 9_338 },
  plainjobEnqueue: 28_831,
  bullmqP50: 0.8,
};

// ---------------------------------------------------------------------------------------------
// Helpers shared by the orchestrator and the workers

function tempDatabase(label) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `promised-bench-${label}-`));
  return { dir, file: path.join(dir, 'bench.db') };
}

function removeTemp(dir) {
  fs.rmSync(dir, { recursive: true, force: true });
}

async function loadEngine() {
  const { createEngine } = await import(pathToFileURL(DIST).href);
  return createEngine;
}

function check(condition, message) {
  if (!condition) throw new Error(`verification failed: ${message}`);
}

function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank];
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Reads every row's status, attempts and count straight from the file, as a check independent of the engine. */
function statusCounts(file) {
  const db = new Database(file, { readonly: true });
  try {
    const counts = {};
    for (const row of db.prepare('select status, count(*) as n from promises group by status').all()) counts[row.status] = row.n;
    const attempts = {};
    for (const row of db.prepare('select attempts, count(*) as n from promises group by attempts').all()) attempts[row.attempts] = row.n;
    return { counts, attempts };
  } finally {
    db.close();
  }
}

/** Counts handler calls per job index; `duplicates` counts every call after the first of a job. */
function callCounter(size) {
  const calls = new Uint8Array(size);
  return {
    calls,
    total: 0,
    duplicates: 0,
    hit(i) {
      if (calls[i]++ > 0) this.duplicates++;
      this.total++;
    },
    missing() {
      let n = 0;
      for (let i = 0; i < size; i++) if (calls[i] === 0) n++;
      return n;
    },
  };
}

/** Resolves when `count` promises have been committed `completed`, as announced by the engine. */
function completionWatch(engine, count) {
  const seen = new Set();
  let resolve;
  const done = new Promise((r) => (resolve = r));
  let at = 0;
  engine.on('transition', (t) => {
    if (t.to !== 'completed') return;
    seen.add(t.id);
    if (seen.size === count) {
      at = performance.now();
      resolve();
    }
  });
  return { done, seen, at: () => at };
}

// ---------------------------------------------------------------------------------------------
// Workers: each runs in its own process and prints one JSON line

const workers = {
  /** 10,000 no-ops enqueued one by one into a stopped engine, then processed at `concurrency`. */
  async throughput({ concurrency }) {
    const createEngine = await loadEngine();
    const { dir, file } = tempDatabase('throughput');
    try {
      const counter = callCounter(N);
      const engine = await createEngine({ database: file, concurrency, changeCheckIntervalMs: 0 });
      engine.task('noop', async (payload) => {
        counter.hit(payload.i);
      });
      const watch = completionWatch(engine, N);

      const e0 = performance.now();
      for (let i = 0; i < N; i++) await engine.enqueue('noop', { i });
      const enqueueMs = performance.now() - e0;

      const s0 = performance.now();
      const summary = await engine.start();
      const startMs = performance.now() - s0;
      await watch.done;
      const processMs = watch.at() - s0;
      const stats = await engine.stats();
      await engine.stop();

      check(summary.resumed.pending === N && summary.resumed.total === N, `start() resumed ${JSON.stringify(summary.resumed)}, expected ${N} pending`);
      check(counter.total === N && counter.duplicates === 0 && counter.missing() === 0, `handler calls ${counter.total}, duplicates ${counter.duplicates}, missing ${counter.missing()}`);
      check(watch.seen.size === N, `completed transitions ${watch.seen.size}`);
      check(stats.completed === N && stats.pending + stats.in_progress + stats.waiting + stats.failed === 0, `stats ${JSON.stringify(stats)}`);
      const disk = statusCounts(file);
      check(disk.counts.completed === N && Object.keys(disk.counts).length === 1, `on disk ${JSON.stringify(disk.counts)}`);
      check(disk.attempts[1] === N, `attempts on disk ${JSON.stringify(disk.attempts)} (each job must have run once)`);

      return {
        concurrency,
        enqueuePerSecond: N / (enqueueMs / 1000),
        enqueueMs,
        startMs,
        processMs,
        completedPerSecond: N / (processMs / 1000),
        verified: `${N} handler calls, 0 duplicates, ${N} rows completed with attempts=1`,
      };
    } finally {
      removeTemp(dir);
    }
  },

  /** 10,000 no-ops through enqueueMany in chunks of 1,000 (engine not started). */
  async bulk() {
    const createEngine = await loadEngine();
    const { dir, file } = tempDatabase('bulk');
    try {
      const engine = await createEngine({ database: file, concurrency: 10, changeCheckIntervalMs: 0 });
      engine.task('noop', async () => {});
      const ids = new Set();
      const t0 = performance.now();
      for (let start = 0; start < N; start += BULK_CHUNK) {
        const items = [];
        for (let i = start; i < start + BULK_CHUNK; i++) items.push({ type: 'noop', payload: { i } });
        for (const id of await engine.enqueueMany(items)) ids.add(id);
      }
      const ms = performance.now() - t0;
      await engine.stop();
      check(ids.size === N, `distinct ids returned ${ids.size}`);
      const disk = statusCounts(file);
      check(disk.counts.pending === N && Object.keys(disk.counts).length === 1, `on disk ${JSON.stringify(disk.counts)}`);
      return { enqueuePerSecond: N / (ms / 1000), ms, verified: `${N} distinct ids, ${N} pending rows on disk` };
    } finally {
      removeTemp(dir);
    }
  },

  /** Enqueue at a steady ~500/s into a started engine; latency = enqueue() called → handler's first line. */
  async latency() {
    const createEngine = await loadEngine();
    const { dir, file } = tempDatabase('latency');
    const total = LATENCY_RATE * LATENCY_SECONDS;
    try {
      const sentAt = new Float64Array(total);
      const latency = new Float64Array(total);
      const counter = callCounter(total);
      const engine = await createEngine({ database: file, concurrency: 10, changeCheckIntervalMs: 0 });
      engine.task('noop', async (payload) => {
        const now = performance.now();
        latency[payload.i] = now - sentAt[payload.i];
        counter.hit(payload.i);
      });
      const watch = completionWatch(engine, total);
      await engine.start();

      const interval = 1000 / LATENCY_RATE;
      const t0 = performance.now();
      for (let i = 0; i < total; i++) {
        const due = t0 + i * interval;
        const wait = due - performance.now();
        if (wait >= 1) await sleep(wait);
        sentAt[i] = performance.now();
        await engine.enqueue('noop', { i });
      }
      const sendSeconds = (performance.now() - t0) / 1000;
      await watch.done;
      await engine.stop();

      check(counter.total === total && counter.duplicates === 0 && counter.missing() === 0, `handler calls ${counter.total}, duplicates ${counter.duplicates}, missing ${counter.missing()}`);
      const disk = statusCounts(file);
      check(disk.counts.completed === total && Object.keys(disk.counts).length === 1, `on disk ${JSON.stringify(disk.counts)}`);
      const sorted = Array.from(latency).sort((a, b) => a - b);
      return {
        jobs: total,
        achievedRate: total / sendSeconds,
        p50Ms: percentile(sorted, 50),
        p90Ms: percentile(sorted, 90),
        p99Ms: percentile(sorted, 99),
        maxMs: sorted[sorted.length - 1],
        verified: `${total} handler calls, 0 duplicates, ${total} rows completed`,
      };
    } finally {
      removeTemp(dir);
    }
  },

  /**
   * The physical limit: better-sqlite3 alone, one claim + one complete transaction per job, on
   * the engine's own schema (the engine's migrations create the file; nothing of the engine runs
   * after that). `plan: 'index'` pins the claim to the ready index, the plan a claim should have;
   * `plan: 'auto'` lets SQLite choose, as the engine's claim does: a diagnostic that drops far
   * below the pinned figure if some index lures the planner into sorting every pending row.
   */
  async raw({ plan = 'index' } = {}) {
    const createEngine = await loadEngine();
    const { dir, file } = tempDatabase('raw');
    try {
      const schemaOnly = await createEngine({ database: file, changeCheckIntervalMs: 0 });
      await schemaOnly.stop();
      const db = new Database(file);
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      const indexes = db.prepare(`select name from sqlite_master where type = 'index' and tbl_name = 'promises' order by name`).pluck().all();
      const snapshot = JSON.stringify({ status: 'active', value: 'pending', historyValue: {}, context: {}, children: {} });
      const now = Date.now();

      // One-row INSERT per transaction, the floor under enqueue-one-by-one.
      const insert = db.prepare(
        `insert into promises (type, status, priority, payload, max_attempts, run_at, snapshot, created_at, updated_at)
         values ('noop', 'pending', 0, ?, 1, ?, ?, ?, ?)`,
      );
      const i0 = performance.now();
      for (let i = 0; i < N; i++) {
        db.exec('BEGIN IMMEDIATE');
        insert.run(JSON.stringify({ i }), now, snapshot, now, now);
        db.exec('COMMIT');
      }
      const insertMs = performance.now() - i0;

      const claim = db.prepare(
        `update promises set status = 'in_progress', attempts = attempts + 1, lease_token = lease_token + 1,
           lease_owner = ?, lease_expires_at = ?, started_at = coalesce(started_at, ?), updated_at = ?
         where id in (select id from promises ${plan === 'index' ? 'indexed by promises_ready' : ''}
                      where status = 'pending' and run_at <= ?
                      order by priority desc, run_at, id limit 1)
         returning *`,
      );
      // As the engine completes: result, completion time and the default 7-day expiry.
      const complete = db.prepare(
        `update promises set status = 'completed', result = null, lease_token = lease_token + 1, lease_owner = null,
           lease_expires_at = null, completed_at = ?, expires_at = ?, updated_at = ?
         where id = ? and status = 'in_progress' and lease_token = ?`,
      );
      const claimPlan = db
        .prepare(`explain query plan ${claim.source}`)
        .all('bench', 0, 0, 0, 0)
        .map((row) => row.detail)
        .join('; ');
      const seen = callCounter(N + 1);
      const c0 = performance.now();
      for (let k = 0; k < N; k++) {
        const t = Date.now();
        db.exec('BEGIN IMMEDIATE');
        const row = claim.get('bench', t + 30_000, t, t, t);
        db.exec('COMMIT');
        JSON.parse(row.payload);
        seen.hit(row.id);
        db.exec('BEGIN IMMEDIATE');
        const { changes } = complete.run(t, t + 7 * 24 * 3600_000, t, row.id, row.lease_token);
        db.exec('COMMIT');
        check(changes === 1, `complete of ${row.id} changed ${changes} rows`);
      }
      const pairMs = performance.now() - c0;
      const left = db.prepare(`select count(*) as n from promises where status != 'completed'`).get().n;

      // The same work batched as the engine batches it: claim up to 10 in one transaction,
      // complete those 10 in another. Not the per-job floor above, but the ceiling of the
      // engine's strategy at concurrency 10.
      db.exec('BEGIN IMMEDIATE');
      for (let i = 0; i < N; i++) insert.run(JSON.stringify({ i }), now, snapshot, now, now);
      db.exec('COMMIT');
      const claimTen = db.prepare(claim.source.replace('limit 1)', 'limit 10)'));
      const batchSeen = callCounter(2 * N + 1);
      const b0 = performance.now();
      for (let done = 0; done < N; ) {
        const t = Date.now();
        db.exec('BEGIN IMMEDIATE');
        const rows = claimTen.all('bench', t + 30_000, t, t, t);
        db.exec('COMMIT');
        db.exec('BEGIN IMMEDIATE');
        for (const row of rows) {
          JSON.parse(row.payload);
          batchSeen.hit(row.id);
          check(complete.run(t, t + 7 * 24 * 3600_000, t, row.id, row.lease_token).changes === 1, `batched complete of ${row.id}`);
        }
        db.exec('COMMIT');
        done += rows.length;
      }
      const batchMs = performance.now() - b0;
      const leftBatched = db.prepare(`select count(*) as n from promises where status != 'completed'`).get().n;
      check(leftBatched === 0 && batchSeen.total === N && batchSeen.duplicates === 0, `batched: left ${leftBatched}, claims ${batchSeen.total}, duplicates ${batchSeen.duplicates}`);
      db.close();
      check(left === 0 && seen.total === N && seen.duplicates === 0, `left ${left}, claims ${seen.total}, duplicates ${seen.duplicates}`);
      return {
        plan: claimPlan,
        indexes,
        insertPerSecond: N / (insertMs / 1000),
        pairsPerSecond: N / (pairMs / 1000),
        pairMicroseconds: (pairMs * 1000) / N,
        batchedPerSecond: N / (batchMs / 1000),
        verified: `${N} distinct claims, ${N} completes each changing 1 row, 0 rows left`,
      };
    } finally {
      removeTemp(dir);
    }
  },

  /**
   * Builds the rehydration database: 90,000 pending, 9,000 waiting on a pending parent, then
   * 1,000 claimed by a process that is killed (`--worker claimer`), so their owner is dead.
   */
  async populate({ file }) {
    const createEngine = await loadEngine();
    const engine = await createEngine({ database: file, concurrency: 10, changeCheckIntervalMs: 0 });
    // retries: dead-owner claims go back to pending (with none left they would fail for good).
    engine.task('noop', async () => {}, { retries: 3 });
    const t0 = performance.now();
    const pendingIds = [];
    for (let start = 0; start < REHYDRATE.pending + REHYDRATE.inProgress; start += REHYDRATE.chunk) {
      const end = Math.min(start + REHYDRATE.chunk, REHYDRATE.pending + REHYDRATE.inProgress);
      const items = [];
      // The first 1,000 get priority 1 so the doomed claimer takes exactly those.
      for (let i = start; i < end; i++) items.push({ type: 'noop', payload: { i }, priority: i < REHYDRATE.inProgress ? 1 : 0 });
      pendingIds.push(...(await engine.enqueueMany(items)));
    }
    for (let start = 0; start < REHYDRATE.waiting; start += REHYDRATE.chunk) {
      const end = Math.min(start + REHYDRATE.chunk, REHYDRATE.waiting);
      const items = [];
      for (let i = start; i < end; i++) {
        // Parents spread over the pending and the soon-to-be-claimed rows; every tenth waits on two.
        const parents = [pendingIds[(i * 7) % pendingIds.length]];
        if (i % 10 === 0) parents.push(pendingIds[(i * 13 + 1) % pendingIds.length]);
        items.push({ type: 'noop', payload: { w: i }, dependsOn: [...new Set(parents)] });
      }
      await engine.enqueueMany(items);
    }
    const ms = performance.now() - t0;
    await engine.stop();
    return { rows: REHYDRATE_TOTAL, ms, rowsPerSecond: REHYDRATE_TOTAL / (ms / 1000) };
  },

  /** Claims `count` promises with handlers that never finish, reports, and waits to be killed. */
  async claimer({ file, count }) {
    const createEngine = await loadEngine();
    const engine = await createEngine({ database: file, concurrency: count, changeCheckIntervalMs: 0 });
    let started = 0;
    let report;
    const ready = new Promise((resolve) => (report = resolve));
    engine.task('noop', () => {
      if (++started === count) report();
      return new Promise(() => {});
    }, { retries: 3 });
    await engine.start();
    await ready;
    // Let the claim commit settle, then tell the parent to kill us (we never stop cleanly).
    await sleep(50);
    process.stdout.write(`READY ${process.pid}\n`);
    await new Promise(() => {});
  },

  /**
   * After rehydration, on the same 100,000-row file: how fast does the engine process its first
   * 5,000 with a large backlog (c=10)? A diagnostic of how claim cost grows with pending rows.
   */
  async backlog({ file, count }) {
    const createEngine = await loadEngine();
    const engine = await createEngine({ database: file, concurrency: 10, changeCheckIntervalMs: 0, stopTimeoutMs: 1_000 });
    const calls = new Map();
    engine.task('noop', async (payload) => {
      const key = payload.i ?? `w${payload.w}`;
      calls.set(key, (calls.get(key) ?? 0) + 1);
    }, { retries: 3 });
    const watch = completionWatch(engine, count);
    await engine.start();
    // From the end of start() (timed separately above): the claims begin on the next turn.
    const t0 = performance.now();
    await watch.done;
    const ms = watch.at() - t0;
    await engine.stop();
    const duplicates = [...calls.values()].filter((n) => n > 1).length;
    const disk = statusCounts(file);
    check(duplicates === 0, `${duplicates} jobs ran twice`);
    check(disk.counts.completed === watch.seen.size && watch.seen.size >= count, `completed on disk ${disk.counts.completed}, announced ${watch.seen.size}`);
    return { count, ms, completedPerSecond: count / (ms / 1000), pendingAtStart: REHYDRATE.pending + REHYDRATE.inProgress };
  },

  /** In a fresh process: open the 100,000-row file and time `start()` alone, with peak RSS. */
  async rehydrate({ file }) {
    const createEngine = await loadEngine();
    const rssBeforeOpen = process.memoryUsage().rss;
    const o0 = performance.now();
    const engine = await createEngine({ database: file, concurrency: 10, changeCheckIntervalMs: 0, stopTimeoutMs: 10 });
    const openMs = performance.now() - o0;
    engine.task('noop', () => new Promise(() => {}), { retries: 3 });
    const rssBeforeStart = process.memoryUsage().rss;
    let rssPeakSampled = rssBeforeStart;
    const sampler = setInterval(() => {
      rssPeakSampled = Math.max(rssPeakSampled, process.memoryUsage().rss);
    }, 2);
    const s0 = performance.now();
    const summary = await engine.start();
    const startMs = performance.now() - s0;
    clearInterval(sampler);
    const rssAfterStart = process.memoryUsage().rss;
    rssPeakSampled = Math.max(rssPeakSampled, rssAfterStart);
    const maxRssBytes = process.resourceUsage().maxRSS * 1024;
    const heapUsed = process.memoryUsage().heapUsed;
    await engine.stop();
    return { summary, openMs, startMs, rssBeforeOpen, rssBeforeStart, rssAfterStart, rssPeakSampled, maxRssBytes, heapUsed };
  },
};

// ---------------------------------------------------------------------------------------------
// The orchestrator

function runWorker(name, args = {}, { onLine } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SELF, '--worker', name, JSON.stringify(args)], {
      stdio: ['ignore', 'pipe', 'inherit'],
      env: process.env,
    });
    let out = '';
    let partial = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
      if (!onLine) return;
      const lines = (partial + chunk).split('\n');
      partial = lines.pop();
      for (const line of lines) onLine(line, child);
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      const line = out.split('\n').find((l) => l.startsWith('RESULT '));
      if (line) return resolve({ result: JSON.parse(line.slice(7)), code, signal, pid: child.pid });
      if (signal) return resolve({ result: undefined, code, signal, pid: child.pid });
      reject(new Error(`worker ${name} exited with ${code}${signal ? ` (${signal})` : ''} and no result`));
    });
  });
}

async function repeat(name, args, runs) {
  const all = [];
  for (let r = 0; r < runs; r++) {
    const { result } = await runWorker(name, args);
    all.push(result);
    process.stderr.write(`  ${name}${args && Object.keys(args).length ? ' ' + JSON.stringify(args) : ''} run ${r + 1}/${runs} done\n`);
  }
  return all;
}

function summarise(all, fields) {
  const out = { runs: all };
  for (const field of fields) out[field] = median(all.map((r) => r[field]));
  return out;
}

async function rehydration() {
  const { dir, file } = tempDatabase('rehydrate');
  try {
    const { result: populate } = await runWorker('populate', { file });
    process.stderr.write(`  populate: ${REHYDRATE_TOTAL.toLocaleString('en')} rows in ${(populate.ms / 1000).toFixed(2)} s\n`);
    // A process claims 1,000 and is killed with SIGKILL: its leases are now held by a dead owner.
    const { signal, pid } = await runWorker('claimer', { file, count: REHYDRATE.inProgress }, {
      onLine: (line, child) => {
        if (line.startsWith('READY ')) child.kill('SIGKILL');
      },
    });
    check(signal === 'SIGKILL', `claimer should have been killed, exited with ${signal}`);
    const before = statusCounts(file);
    check(before.counts.pending === REHYDRATE.pending && before.counts.waiting === REHYDRATE.waiting && before.counts.in_progress === REHYDRATE.inProgress,
      `before start: ${JSON.stringify(before.counts)}`);
    const { result } = await runWorker('rehydrate', { file });
    const { summary } = result;
    check(summary.resumed.total === REHYDRATE_TOTAL && summary.resumed.pending === REHYDRATE.pending && summary.resumed.waiting === REHYDRATE.waiting && summary.resumed.in_progress === REHYDRATE.inProgress,
      `start() resumed ${JSON.stringify(summary.resumed)}`);
    check(summary.recovered === REHYDRATE.inProgress, `recovered ${summary.recovered}, expected ${REHYDRATE.inProgress} (dead owner pid ${pid})`);
    check(summary.repairedSnapshots === 0, `repaired ${summary.repairedSnapshots} snapshots`);
    const after = statusCounts(file);
    const unfinished = (after.counts.pending ?? 0) + (after.counts.waiting ?? 0) + (after.counts.in_progress ?? 0);
    check(unfinished === REHYDRATE_TOTAL && !after.counts.failed && !after.counts.completed, `after stop: ${JSON.stringify(after.counts)}`);
    const { result: backlog } = await runWorker('backlog', { file, count: 5_000 });
    return {
      ...result,
      populate,
      backlog,
      verified: `resumed ${REHYDRATE_TOTAL} (${summary.resumed.pending} pending, ${summary.resumed.waiting} waiting, ${summary.resumed.in_progress} in_progress), recovered ${summary.recovered} dead-owner claims, 0 lost or failed after stop`,
    };
  } finally {
    removeTemp(dir);
  }
}

/** The commit measured, and whether the working tree differed from it. */
function gitDescribe() {
  try {
    const cwd = path.join(BENCH_DIR, '..');
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src'], { cwd, encoding: 'utf8' }).trim().length > 0;
    return dirty ? `${commit} (src/ modified)` : commit;
  } catch {
    return 'unknown';
  }
}

function parseArgs(argv) {
  const options = { runs: 3, only: null, out: path.join(RESULTS_DIR, 'latest.json') };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split('=');
    const value = () => inline ?? argv[++i];
    if (flag === '--runs') options.runs = Number(value());
    else if (flag === '--only') options.only = new Set(value().split(','));
    else if (flag === '--out') options.out = path.resolve(value());
    else throw new Error(`unknown argument ${argv[i]} (use --runs N, --only throughput,c1,bulk,latency,raw,rehydrate, --out file.json)`);
  }
  if (!Number.isInteger(options.runs) || options.runs < 1) throw new Error('--runs must be a positive integer');
  return options;
}

const fmt = (n, digits = 0) => (Number.isFinite(n) ? n.toLocaleString('en', { minimumFractionDigits: digits, maximumFractionDigits: digits }) : '—');
const mb = (bytes) => bytes / (1024 * 1024);

function printTable(rows) {
  const headers = ['measurement', 'result', 'goal', 'met'];
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells) => cells.map((c, i) => String(c).padEnd(widths[i])).join('  ');
  console.log(line(headers));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const row of rows) console.log(line(row));
}

async function main() {
  const options = parseArgs(process.argv.slice(2));
  const wants = (name) => !options.only || options.only.has(name);
  check(fs.existsSync(DIST), `${DIST} does not exist: run npm run build first`);
  const meta = {
    date: new Date().toISOString(),
    node: process.version,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryGb: Math.round(os.totalmem() / 2 ** 30),
    platform: `${os.type()} ${os.release()}`,
    dist: DIST,
    // Another build (PROMISED_DIST) says which commit it is through PROMISED_COMMIT.
    commit: process.env.PROMISED_DIST ? (process.env.PROMISED_COMMIT ?? 'unknown (PROMISED_DIST)') : gitDescribe(),
    runs: options.runs,
    // Other processes competing for the 2 cores lower every figure: recorded, and warned about.
    loadAverageAtStart: os.loadavg()[0],
    workload: { jobs: N, bulkChunk: BULK_CHUNK, latencyRate: LATENCY_RATE, latencySeconds: LATENCY_SECONDS, rehydrate: REHYDRATE },
  };
  process.stderr.write(`promised bench: node ${meta.node}, ${meta.cpus} cores, ${options.runs} run(s) per measurement\n`);
  if (meta.loadAverageAtStart > 0.5) process.stderr.write(`  warning: load average ${meta.loadAverageAtStart.toFixed(2)}: other processes are busy, figures will be low\n`);
  const results = {};
  if (wants('throughput')) results.processC10 = summarise(await repeat('throughput', { concurrency: 10 }, options.runs), ['enqueuePerSecond', 'completedPerSecond', 'startMs']);
  if (wants('c1')) results.processC1 = summarise(await repeat('throughput', { concurrency: 1 }, options.runs), ['enqueuePerSecond', 'completedPerSecond']);
  if (wants('bulk')) results.bulk = summarise(await repeat('bulk', {}, options.runs), ['enqueuePerSecond']);
  if (wants('latency')) results.latency = summarise(await repeat('latency', {}, options.runs), ['p50Ms', 'p90Ms', 'p99Ms', 'maxMs', 'achievedRate']);
  if (wants('raw')) {
    results.raw = summarise(await repeat('raw', { plan: 'index' }, options.runs), ['insertPerSecond', 'pairsPerSecond', 'batchedPerSecond']);
    results.rawUnpinnedPlan = summarise(await repeat('raw', { plan: 'auto' }, 1), ['pairsPerSecond']);
  }
  if (wants('rehydrate')) results.rehydrate = await rehydration();

  const rows = [];
  const { processC10: c10, processC1: c1, bulk, latency, raw, rehydrate } = results;
  if (c10) {
    rows.push(['enqueue 1-by-1 (awaited), /s', fmt(c10.enqueuePerSecond), `> ${fmt(PEERS.plainjobEnqueue)} (plainjob)`, c10.enqueuePerSecond > PEERS.plainjobEnqueue ? 'yes' : 'NO']);
  }
  if (bulk) rows.push([`bulk enqueueMany (chunks of ${fmt(BULK_CHUNK)}), /s`, fmt(bulk.enqueuePerSecond), '', '']);
  if (c1) rows.push(['process 10,000 no-ops, c=1, /s', fmt(c1.completedPerSecond), '', '']);
  if (c10) {
    const goal = 2 * PEERS.fastestProcessC10.perSecond;
    rows.push(['process 10,000 no-ops, c=10, /s', fmt(c10.completedPerSecond), `>= ${fmt(goal)} (2x ${PEERS.fastestProcessC10.name})`, c10.completedPerSecond >= goal ? 'yes' : 'NO']);
  }
  if (raw) {
    rows.push(['raw SQLite 1-row INSERT tx, /s', fmt(raw.insertPerSecond), '', '']);
    rows.push(['raw SQLite claim+complete pairs, /s', fmt(raw.pairsPerSecond), '', '']);
    rows.push(['  same, SQLite left to pick the plan, /s', fmt(results.rawUnpinnedPlan.pairsPerSecond), '(diagnostic, 1 run)', '']);
    rows.push(['raw SQLite batched 10 per tx, jobs/s', fmt(raw.batchedPerSecond), '', '']);
  }
  if (c10 && raw) {
    results.rawRatio = c10.completedPerSecond / raw.pairsPerSecond;
    rows.push(['engine c=10 / raw pairs', fmt(results.rawRatio, 2), '>= 0.50', results.rawRatio >= 0.5 ? 'yes' : 'NO']);
  }
  if (c10 && raw) {
    results.batchedRatio = c10.completedPerSecond / raw.batchedPerSecond;
    rows.push(['engine c=10 / raw batched', fmt(results.batchedRatio, 2), '', '']);
  }
  if (c10 && raw) {
    results.enqueueRatio = c10.enqueuePerSecond / raw.insertPerSecond;
    rows.push(['engine enqueue / raw INSERT', fmt(results.enqueueRatio, 2), '', '']);
  }
  if (latency) {
    rows.push([`latency p50 at ${LATENCY_RATE}/s, ms`, fmt(latency.p50Ms, 2), `< ${PEERS.bullmqP50} (BullMQ)`, latency.p50Ms < PEERS.bullmqP50 ? 'yes' : 'NO']);
    rows.push([`latency p99 at ${LATENCY_RATE}/s, ms`, fmt(latency.p99Ms, 2), '< 5', latency.p99Ms < 5 ? 'yes' : 'NO']);
    rows.push([`latency max at ${LATENCY_RATE}/s, ms`, fmt(latency.maxMs, 2), '', '']);
  }
  if (rehydrate) {
    const peak = Math.max(rehydrate.maxRssBytes, rehydrate.rssPeakSampled);
    rows.push([`build ${fmt(REHYDRATE_TOTAL)} unfinished rows, s`, fmt(rehydrate.populate.ms / 1000, 2), '', '']);
    rows.push([`start() over ${fmt(REHYDRATE_TOTAL)} unfinished, s`, fmt(rehydrate.startMs / 1000, 2), '< 2', rehydrate.startMs < 2000 ? 'yes' : 'NO']);
    rows.push(['  peak RSS (maxRSS), MB', fmt(mb(peak), 0), '< 200', mb(peak) < 200 ? 'yes' : 'NO']);
    rows.push(['  RSS before start() / after, MB', `${fmt(mb(rehydrate.rssBeforeStart))} / ${fmt(mb(rehydrate.rssAfterStart))}`, '', '']);
    rows.push(['  recovered dead-owner claims', fmt(rehydrate.summary.recovered), fmt(REHYDRATE.inProgress), rehydrate.summary.recovered === REHYDRATE.inProgress ? 'yes' : 'NO']);
    rows.push([`then process 5,000 of that backlog, c=10, /s`, fmt(rehydrate.backlog.completedPerSecond), '(diagnostic, 1 run)', '']);
  }
  console.log('');
  console.log(`promised bench — commit ${meta.commit}, node ${meta.node}, ${meta.cpus} cores (${meta.cpuModel}), median of ${options.runs} run(s), ${meta.date}`);
  console.log('');
  printTable(rows);
  meta.loadAverageAtEnd = os.loadavg()[0];
  console.log('');
  console.log(`Load average (1 min) at start ${meta.loadAverageAtStart.toFixed(2)}, at end ${meta.loadAverageAtEnd.toFixed(2)}.`);
  console.log('Every figure verified: each job handled exactly once and every row in its expected state on disk.');

  const out = options.out;
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, JSON.stringify({ meta, results }, null, 2) + '\n');
  console.log(`Results written to ${path.relative(process.cwd(), out) || out}`);
}

if (process.argv[2] === '--worker') {
  const name = process.argv[3];
  const args = process.argv[4] ? JSON.parse(process.argv[4]) : {};
  workers[name](args).then(
    (result) => {
      process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
      process.exit(0);
    },
    (error) => {
      console.error(error);
      process.exit(1);
    },
  );
} else {
  main().catch((error) => {
    console.error(error);
    process.exit(1);
  });
}
