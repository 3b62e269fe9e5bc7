// promised raced against its peers, in one run, on this machine (issue 9).
//
//   npm ci && npm run build                # at the repository root: this bench imports ../../dist
//   cd bench/peers && npm install && npm run bench   # npm install, not npm ci: see docs/peers.md
//
// `npm run bench` runs on the project's pinned Node (../../node_modules/.bin/node, 26): the peers'
// current majors need Node 22.18+ (graphile-worker 0.18), so a system Node 20 will not do.
//
//   npm run bench -- --systems promised,bullmq  # a subset (default: all that can run here)
//   npm run bench -- --only c10,latency         # a subset of measurements
//   npm run bench -- --runs 1                   # one repetition instead of three (quick look)
//   npm run bench -- --n 500                    # fewer jobs (a smoke run; figures not comparable)
//   npm run bench -- --no-wait                  # do not wait for the machine's load to drop below 0.7
//
// Every measurement runs in a fresh child process against a fresh store: a new SQLite file in a
// temp dir, a new PostgreSQL database on a throwaway server started here (initdb as the postgres
// user, fsync=on, synchronous_commit=on), or a flushed Redis started here (appendonly yes,
// appendfsync everysec). Every measurement checks that every job was handled exactly once and that
// the store shows every job finished. The orchestrator prints a table of figures and ratios,
// writes results/latest.json and draws ../../docs/peers.svg.

import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';

const SELF = fileURLToPath(import.meta.url);
const HERE = path.dirname(SELF);
const ROOT = path.join(HERE, '..', '..');
const DIST = process.env.PROMISED_DIST ? path.resolve(process.env.PROMISED_DIST) : path.join(ROOT, 'dist', 'index.js');
const RESULTS_DIR = path.join(HERE, 'results');
const SVG_OUT = path.join(ROOT, 'docs', 'peers.svg');

// --n N (a smoke run) is read here, before the figures that depend on it, and reaches the
// children through PEERS_N.
const nFlag = process.argv.findIndex((arg) => arg === '--n' || arg.startsWith('--n='));
if (nFlag !== -1) process.env.PEERS_N = process.argv[nFlag].includes('=') ? process.argv[nFlag].split('=')[1] : process.argv[nFlag + 1];
const N = Number(process.env.PEERS_N ?? 10_000);
if (!Number.isInteger(N) || N < 10) throw new Error(`--n must be an integer of at least 10, got ${process.env.PEERS_N}`);
const BULK_CHUNK = Math.min(1_000, N);
const LATENCY_RATE = 500;
const LATENCY_SECONDS = 4;
const CHAIN = Math.min(1_000, N);
const IDLE_POLL_MS = 50; // for the peers that poll (plainjob, liteque, our pg-boss fetch loop)
const CHILD_TIMEOUT_MS = 240_000;

// ---------------------------------------------------------------------------------------------
// The systems. `durability` is printed and written to the results.

const SYSTEMS = {
  promised: { label: 'promised (SQLite)', store: 'sqlite', durability: 'SQLite WAL, synchronous=NORMAL (the default)' },
  'promised-pg': { label: 'promised (PostgreSQL 15)', store: 'postgres', durability: 'PostgreSQL 15, fsync=on, synchronous_commit=on' },
  bullmq: { label: 'BullMQ 6.7 + Redis 7', store: 'redis', durability: 'Redis 7, appendonly yes, appendfsync everysec' },
  pgboss: { label: 'pg-boss 12.38 + PG 15', store: 'postgres', durability: 'PostgreSQL 15, fsync=on, synchronous_commit=on' },
  graphile: { label: 'graphile-worker 0.18 + PG 15', store: 'postgres', durability: 'PostgreSQL 15, fsync=on, synchronous_commit=on' },
  plainjob: { label: 'plainjob 0.0.14 (SQLite)', store: 'sqlite', durability: 'SQLite WAL, synchronous=NORMAL (set by plainjob)' },
  liteque: {
    label: 'liteque 0.8 (SQLite)',
    store: 'sqlite',
    durability: 'SQLite WAL, synchronous=NORMAL (set by liteque)',
    // Left out unless named with --systems: its claim hands better-sqlite3 an async transaction
    // function. better-sqlite3 13 refuses that; 11 and 12 committed before the awaited work ran.
    unavailable: 'liteque 0.8 passes an async function to better-sqlite3 13\'s transaction(), which refuses it (11 and 12 committed before the awaited work ran, so the claim was not one transaction)',
  },
  openworkflow: { label: 'OpenWorkflow 0.10 + PG 15', store: 'postgres', durability: 'PostgreSQL 15, fsync=on, synchronous_commit=on', only: ['chain'] },
  // OpenWorkflow's SQLite backend runs on node:sqlite (Node 22.13+ unflagged), and sets only WAL.
  'openworkflow-sqlite': { label: 'OpenWorkflow 0.10 (SQLite)', store: 'sqlite', durability: 'SQLite WAL via node:sqlite, synchronous=FULL (SQLite\'s default; OpenWorkflow sets only WAL)', only: ['chain'] },
};

// Measurements, and how many repetitions each gets by default (the median is reported).
const MEASUREMENTS = {
  enqueue: { runs: 3, title: 'enqueue 1-by-1 /s' },
  bulk: { runs: 3, title: 'bulk enqueue /s' },
  c1: { runs: 1, title: 'process c=1 /s' },
  c10: { runs: 3, title: 'process c=10 /s' },
  latency: { runs: 3, title: 'latency p50/p99 ms' },
  chain: { runs: 1, title: `chain of ${CHAIN} s` },
};

// ---------------------------------------------------------------------------------------------
// Helpers

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function check(condition, message) {
  if (!condition) throw new Error(`verification failed: ${message}`);
}

function percentile(sorted, p) {
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank];
}

function median(values) {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Counts handler calls per job index. */
function callCounter(size) {
  const calls = new Uint8Array(size);
  return {
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
    assertOnce(what = 'handler calls') {
      const missing = this.missing();
      check(this.total === size && this.duplicates === 0 && missing === 0, `${what} ${this.total}, duplicates ${this.duplicates}, missing ${missing}`);
    },
  };
}

async function waitFor(predicate, { intervalMs = 2, timeoutMs = 180_000, what = 'condition' } = {}) {
  const t0 = Date.now();
  for (;;) {
    if (await predicate()) return;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await sleep(intervalMs);
  }
}

const silentLogger = { error() {}, warn() {}, info() {}, debug() {} };

// ---------------------------------------------------------------------------------------------
// Adapters, loaded only in the child that measures that system. Each one offers:
//   open(env) → ctx; enqueue(ctx, i); bulk?(ctx, is[]); worker(ctx, concurrency, handle(i, ctx)) →
//   { stop }; doneCount(ctx) → jobs the store shows finished; close(ctx).
// `handle` is sync or async; `onDone(i)` (if the adapter calls it) means "committed complete".

const adapters = {
  async promised(env) {
    const { createEngine } = await import(pathToFileURL(DIST).href);
    const database = env.database ?? path.join(env.dir, 'bench.db');
    const engine = await createEngine({ database, concurrency: env.concurrency ?? 10, changeCheckIntervalMs: 0, cleanupIntervalMs: 0 });
    let handler = () => {};
    engine.task('noop', async (payload) => handler(payload.i));
    const doneHooks = [];
    engine.on('transition', (t) => {
      if (t.to === 'completed') for (const hook of doneHooks) hook(t);
    });
    return {
      async enqueue(i, options) {
        return engine.enqueue('noop', { i }, options);
      },
      async bulk(is) {
        return engine.enqueueMany(is.map((i) => ({ type: 'noop', payload: { i } })));
      },
      async worker(concurrency, handle, onDone) {
        check(concurrency === (env.concurrency ?? 10), 'promised concurrency is set at open');
        handler = handle;
        if (onDone) doneHooks.push(() => onDone());
        await engine.start();
        return { stop: async () => {} };
      },
      async doneCount() {
        return (await engine.stats()).completed;
      },
      async close() {
        await engine.stop();
      },
      engine,
      selfCompletes: true,
    };
  },

  async 'promised-pg'(env) {
    return adapters.promised(env);
  },

  async bullmq(env) {
    const { Queue, Worker } = await import('bullmq');
    const { Redis } = await import('ioredis');
    // BullMQ under native ESM wants constructed ioredis clients, not connection options.
    const options = { host: '127.0.0.1', port: env.redisPort, maxRetriesPerRequest: null };
    const admin = new Redis(options);
    await admin.flushall(); // a fresh keyspace for every measurement
    await admin.quit();
    const queue = new Queue('bench', { connection: new Redis(options) });
    await queue.waitUntilReady();
    const workers = [];
    return {
      async enqueue(i) {
        return queue.add('noop', { i });
      },
      async bulk(is) {
        return queue.addBulk(is.map((i) => ({ name: 'noop', data: { i } })));
      },
      async worker(concurrency, handle, onDone) {
        const worker = new Worker('bench', async (job) => handle(job.data.i), { connection: new Redis(options), concurrency });
        if (onDone) worker.on('completed', () => onDone());
        worker.on('error', () => {});
        await worker.waitUntilReady();
        workers.push(worker);
        return { stop: () => worker.close() };
      },
      async doneCount() {
        return (await queue.getJobCounts('completed')).completed;
      },
      async close() {
        for (const w of workers) await w.close();
        await queue.close();
      },
      selfCompletes: true,
    };
  },

  async pgboss(env) {
    // pg-boss 12 exports the class by name. Configured as for the published race (pg-boss 10):
    // its LISTEN/NOTIFY wake-ups (useListenNotify + a notify queue) and burstWhenBatchFull are new
    // since, and left for the next full race to weigh, with docs/peers.md and bench/postgres.js.
    const { PgBoss } = await import('pg-boss');
    const boss = new PgBoss({ connectionString: env.database, supervise: false, schedule: false, max: 12 });
    boss.on('error', () => {});
    await boss.start();
    await boss.createQueue('bench');
    const loops = [];
    const workIds = [];
    return {
      boss,
      async enqueue(i) {
        return boss.send('bench', { i });
      },
      async bulk(is) {
        return boss.insert('bench', is.map((i) => ({ data: { i } })));
      },
      // c loops of fetch → handler → complete, polling every 50 ms when idle: the same loop as the
      // published race (pg-boss 10's work() waited out its polling interval after every fetch).
      async worker(concurrency, handle, onDone) {
        let running = true;
        for (let k = 0; k < concurrency; k++) {
          loops.push(
            (async () => {
              while (running) {
                const jobs = await boss.fetch('bench', { batchSize: 1 });
                if (!jobs || jobs.length === 0) {
                  await sleep(IDLE_POLL_MS);
                  continue;
                }
                for (const job of jobs) {
                  await handle(job.data.i);
                  await boss.complete('bench', job.id);
                  if (onDone) onDone();
                }
              }
            })(),
          );
        }
        return {
          stop: async () => {
            running = false;
            await Promise.all(loops);
          },
        };
      },
      // pg-boss's own work() loop, as its docs suggest for throughput: one work() per process with
      // batchSize = concurrency (the handler gets the batch and runs it concurrently; pg-boss then
      // completes the whole batch in one statement) at the shortest polling interval it allows
      // (0.5 s). work() waits out that interval after every fetch, so after a full batch the
      // handler calls the documented notifyWorker(id), which skips the wait for that iteration.
      // pg-boss 12's offWork takes the queue's name first.
      async work(concurrency, handle) {
        let id = null;
        id = await boss.work('bench', { batchSize: concurrency, pollingIntervalSeconds: 0.5 }, async (jobs) => {
          await Promise.all(jobs.map((job) => handle(job.data.i)));
          if (jobs.length === concurrency && id) boss.notifyWorker(id);
        });
        workIds.push(id);
        return { stop: () => boss.offWork('bench', { id }) };
      },
      async doneCount() {
        const rows = await boss.getDb().executeSql(`select count(*)::int as n from pgboss.job where name = 'bench' and state = 'completed'`);
        return rows.rows[0].n;
      },
      async close() {
        await boss.stop({ graceful: false, wait: true, timeout: 2000 });
      },
      selfCompletes: true,
    };
  },

  async graphile(env) {
    const gw = await import('graphile-worker');
    const { Logger, makeWorkerUtils, run } = gw.default ?? gw;
    const logger = new Logger(() => () => {});
    const utils = await makeWorkerUtils({ connectionString: env.database, logger });
    await utils.migrate();
    const runners = [];
    return {
      async enqueue(i) {
        return utils.addJob('noop', { i });
      },
      async bulk(is) {
        return utils.addJobs(is.map((i) => ({ identifier: 'noop', payload: { i } })));
      },
      async worker(concurrency, handle) {
        const runner = await run({
          connectionString: env.database,
          concurrency,
          noHandleSignals: true,
          pollInterval: 2000,
          logger,
          taskList: { noop: async (payload) => handle(payload.i) },
        });
        let stopped = null;
        const stop = () => (stopped ??= runner.stop());
        runners.push(stop);
        return { stop };
      },
      // Completed jobs are deleted (completeJob is fired without waiting, so poll the table).
      async doneCount(total) {
        const rows = await utils.withPgClient((c) => c.query('select count(*)::int as n from graphile_worker._private_jobs'));
        return total - rows.rows[0].n;
      },
      async close() {
        for (const stop of runners) await stop();
        await utils.release();
      },
      selfCompletes: false,
    };
  },

  async plainjob(env) {
    const { better, defineQueue, defineWorker, JobStatus } = await import('plainjob');
    const { default: Database } = await import('better-sqlite3');
    const connection = better(new Database(path.join(env.dir, 'bench.db')));
    const queue = defineQueue({ connection, logger: silentLogger });
    const workers = [];
    return {
      async enqueue(i) {
        return queue.add('noop', { i });
      },
      async bulk(is) {
        return queue.addMany('noop', is.map((i) => ({ i })));
      },
      // plainjob runs one job at a time per worker: concurrency c = c workers on the queue.
      async worker(concurrency, handle, onDone) {
        const mine = [];
        for (let k = 0; k < concurrency; k++) {
          const worker = defineWorker('noop', async (job) => handle(JSON.parse(job.data).i), {
            queue,
            pollIntervall: IDLE_POLL_MS,
            logger: silentLogger,
            onCompleted: onDone ? () => onDone() : undefined,
          });
          worker.start();
          mine.push(worker);
        }
        workers.push(...mine);
        return { stop: () => Promise.all(mine.map((w) => w.stop())) };
      },
      async doneCount() {
        return queue.countJobs({ status: JobStatus.Done });
      },
      async close() {
        await Promise.all(workers.map((w) => w.stop()));
        queue.close();
      },
      selfCompletes: true,
    };
  },

  async liteque(env) {
    const { buildDBClient, Runner, SqliteQueue } = await import('liteque');
    const db = buildDBClient(path.join(env.dir, 'bench.db'), { runMigrations: true });
    const queue = new SqliteQueue('bench', db, { defaultJobArgs: { numRetries: 0 }, keepFailedJobs: true });
    const runners = [];
    return {
      async enqueue(i) {
        return queue.enqueue({ i });
      },
      // liteque has no bulk enqueue.
      async worker(concurrency, handle) {
        const runner = new Runner(queue, { run: async (job) => handle(job.data.i) }, { concurrency, pollIntervalMs: IDLE_POLL_MS, timeoutSecs: 60 });
        const loop = runner.run();
        runners.push({ runner, loop });
        return {
          stop: async () => {
            runner.stop();
            await loop;
          },
        };
      },
      // Completed jobs are deleted; failed ones kept (none may fail).
      async doneCount(total) {
        const s = await queue.stats();
        check(s.failed === 0, `liteque failed jobs ${s.failed}`);
        return total - (s.pending + s.pending_retry + s.running);
      },
      async close() {
        for (const { runner, loop } of runners) {
          runner.stop();
          await loop;
        }
      },
      selfCompletes: false,
    };
  },
};

// ---------------------------------------------------------------------------------------------
// Measurements (in the child)

async function timedWorker(sys, concurrency, total, handle) {
  // Runs a worker until `total` jobs are finished as the store sees them; returns ms from the
  // worker's start (including start-up) to that moment.
  let done = 0;
  let doneAt = 0;
  const onDone = sys.selfCompletes
    ? () => {
        if (++done === total) doneAt = performance.now();
      }
    : undefined;
  const t0 = performance.now();
  const w = await sys.worker(concurrency, handle, onDone);
  if (sys.selfCompletes) await waitFor(() => done >= total, { what: 'completions' });
  else await waitFor(async () => (await sys.doneCount(total)) >= total, { intervalMs: 2, what: 'completions in the store' });
  const ms = (sys.selfCompletes ? doneAt : performance.now()) - t0;
  return { ms, t0, w };
}

const measures = {
  async enqueue(sys) {
    const t0 = performance.now();
    for (let i = 0; i < N; i++) await sys.enqueue(i);
    const ms = performance.now() - t0;
    return { perSecond: N / (ms / 1000), ms };
  },

  async bulk(sys) {
    if (!sys.bulk) return { unsupported: 'no bulk enqueue in this library' };
    const t0 = performance.now();
    let count = 0;
    for (let start = 0; start < N; start += BULK_CHUNK) {
      const is = Array.from({ length: BULK_CHUNK }, (_, k) => start + k);
      await sys.bulk(is);
      count += is.length;
    }
    const ms = performance.now() - t0;
    check(count === N, 'bulk count');
    return { perSecond: N / (ms / 1000), ms };
  },

  async process(sys, { concurrency }) {
    // Pre-enqueue (not timed), in bulk where the library can.
    if (sys.bulk) for (let s = 0; s < N; s += BULK_CHUNK) await sys.bulk(Array.from({ length: BULK_CHUNK }, (_, k) => s + k));
    else for (let i = 0; i < N; i++) await sys.enqueue(i);
    const counter = callCounter(N);
    const { ms, w } = await timedWorker(sys, concurrency, N, (i) => {
      counter.hit(i);
    });
    await w.stop();
    counter.assertOnce();
    return { perSecond: N / (ms / 1000), ms };
  },

  async latency(sys) {
    const total = LATENCY_RATE * LATENCY_SECONDS;
    const sentAt = new Float64Array(total);
    const latency = new Float64Array(total);
    const counter = callCounter(total);
    let done = 0;
    const w = await sys.worker(
      10,
      (i) => {
        latency[i] = performance.now() - sentAt[i];
        counter.hit(i);
      },
      sys.selfCompletes ? () => done++ : undefined,
    );
    await sleep(200); // let the worker settle into its idle wait
    const interval = 1000 / LATENCY_RATE;
    const t0 = performance.now();
    for (let i = 0; i < total; i++) {
      const wait = t0 + i * interval - performance.now();
      if (wait >= 1) await sleep(wait);
      sentAt[i] = performance.now();
      await sys.enqueue(i);
    }
    const sendSeconds = (performance.now() - t0) / 1000;
    if (sys.selfCompletes) await waitFor(() => done >= total, { what: 'completions' });
    else await waitFor(async () => (await sys.doneCount(total)) >= total, { what: 'completions in the store' });
    await w.stop();
    counter.assertOnce();
    const sorted = Array.from(latency).sort((a, b) => a - b);
    return { p50Ms: percentile(sorted, 50), p90Ms: percentile(sorted, 90), p99Ms: percentile(sorted, 99), maxMs: sorted[total - 1], achievedRate: total / sendSeconds };
  },

  async chain(sys, { name }) {
    const order = [];
    let firstStart = 0;
    let lastDone = 0;
    const counter = callCounter(CHAIN);
    if (name === 'promised' || name === 'promised-pg') {
      // Real dependencies: the 1,000 promises are enqueued up front (not timed), each depending
      // on the one before; completing one releases the next in the same transaction.
      let prev;
      for (let i = 0; i < CHAIN; i++) prev = await sys.enqueue(i, prev ? { dependsOn: [prev] } : undefined);
      let done = 0;
      const w = await sys.worker(
        10,
        (i) => {
          if (i === 0) firstStart = performance.now();
          order.push(i);
          counter.hit(i);
        },
        () => {
          if (++done === CHAIN) lastDone = performance.now();
        },
      );
      await waitFor(() => done >= CHAIN, { what: 'chain' });
      await w.stop();
    } else {
      // No dependencies in the library: each handler enqueues the next job before it returns.
      let done = 0;
      const w = await sys.worker(
        10,
        async (i) => {
          if (i === 0) firstStart = performance.now();
          order.push(i);
          counter.hit(i);
          if (i + 1 < CHAIN) await sys.enqueue(i + 1);
        },
        sys.selfCompletes
          ? () => {
              if (++done === CHAIN) lastDone = performance.now();
            }
          : undefined,
      );
      await sys.enqueue(0);
      if (sys.selfCompletes) await waitFor(() => done >= CHAIN, { what: 'chain' });
      else {
        await waitFor(async () => (await sys.doneCount(CHAIN)) >= CHAIN, { what: 'chain in the store' });
        lastDone = performance.now();
      }
      await w.stop();
    }
    counter.assertOnce('chain handler calls');
    check(order.every((v, k) => v === k), 'chain ran out of order');
    const ms = lastDone - firstStart;
    return { ms, stepsPerSecond: CHAIN / (ms / 1000), how: name.startsWith('promised') ? 'dependsOn, enqueued up front' : 'next job enqueued from the handler' };
  },
};

async function openWorkflowChain(env, store) {
  const { OpenWorkflow } = await import('openworkflow');
  let backend;
  if (store === 'sqlite') {
    const { BackendSqlite } = await import('openworkflow/sqlite');
    backend = BackendSqlite.connect(path.join(env.dir, 'openworkflow.db'), { runMigrations: true });
  } else {
    const { BackendPostgres } = await import('openworkflow/postgres');
    backend = await BackendPostgres.connect(env.database, { runMigrations: true });
  }
  const ow = new OpenWorkflow({ backend });
  const counter = callCounter(CHAIN);
  const order = [];
  let firstStart = 0;
  const wf = ow.defineWorkflow({ name: 'chain' }, async ({ step }) => {
    for (let i = 0; i < CHAIN; i++) {
      await step.run({ name: `s${i}` }, async () => {
        if (i === 0 && !firstStart) firstStart = performance.now();
        order.push(i);
        counter.hit(i);
        return i;
      });
    }
    return CHAIN;
  });
  const worker = ow.newWorker({ concurrency: 10 });
  await worker.start();
  const handle = await wf.run({});
  const id = handle.workflowRun.id;
  let lastDone = 0;
  await waitFor(
    async () => {
      const run = await backend.getWorkflowRun({ workflowRunId: id });
      if (run?.status === 'completed') {
        lastDone = performance.now();
        return true;
      }
      check(run?.status !== 'failed', `workflow failed: ${JSON.stringify(run?.error)}`);
      return false;
    },
    { intervalMs: 5, what: 'workflow completion' },
  );
  await worker.stop();
  await backend.stop();
  counter.assertOnce('step calls');
  check(order.every((v, k) => v === k), 'steps out of order');
  const ms = lastDone - firstStart;
  return { ms, stepsPerSecond: CHAIN / (ms / 1000), how: 'one workflow of 1,000 sequential step.run calls' };
}

async function child(name, measurement, env) {
  let result;
  if (name === 'openworkflow' || name === 'openworkflow-sqlite') {
    check(measurement === 'chain', 'openworkflow runs the chain only');
    result = await openWorkflowChain(env, SYSTEMS[name].store);
  } else {
    const concurrency = measurement === 'c1' ? 1 : 10;
    const sys = await adapters[name]({ ...env, concurrency });
    try {
      if (measurement === 'enqueue') result = await measures.enqueue(sys);
      else if (measurement === 'bulk') result = await measures.bulk(sys);
      else if (measurement === 'c1' || measurement === 'c10') result = await measures.process(sys, { concurrency });
      else if (measurement === 'latency') result = await measures.latency(sys);
      else if (measurement === 'chain') result = await measures.chain(sys, { name });
      // The store itself must show every job finished (or, after enqueueing only, present).
      if (['c1', 'c10', 'latency'].includes(measurement)) {
        const total = measurement === 'latency' ? LATENCY_RATE * LATENCY_SECONDS : N;
        const done = await sys.doneCount(total);
        check(done === total, `store shows ${done} finished, expected ${total}`);
        result.verified = `${total} handler calls, 0 duplicates, 0 missing; store shows ${done} finished`;
      } else if (measurement === 'chain') {
        const done = await sys.doneCount(CHAIN);
        check(done === CHAIN, `store shows ${done} finished, expected ${CHAIN}`);
        result.verified = `${CHAIN} steps, each once, in order; store shows ${done} finished`;
      } else if (!result.unsupported) {
        result.verified = `${N} enqueue calls returned`;
      }
    } finally {
      await sys.close();
    }
  }
  result.maxRssMB = process.resourceUsage().maxRSS / 1024;
  return result;
}

// ---------------------------------------------------------------------------------------------
// Servers (in the orchestrator)

async function freePort() {
  return new Promise((resolve) => {
    const probe = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

async function startRedis() {
  const bin = ['/usr/bin/redis-server', '/usr/local/bin/redis-server'].find((p) => fs.existsSync(p));
  if (!bin) throw new Error('redis-server not found (apt-get install redis-server)');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'peers-redis-'));
  const port = await freePort();
  const proc = spawn(bin, ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--appendfsync', 'everysec', '--save', '', '--daemonize', 'no', '--logfile', path.join(dir, 'log')], { stdio: 'ignore' });
  const version = execFileSync(bin, ['--version'], { encoding: 'utf8' }).match(/v=(\S+)/)[1];
  const t0 = Date.now();
  for (;;) {
    const ok = await new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.end();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) break;
    if (Date.now() - t0 > 10_000) throw new Error('redis-server did not start');
    await sleep(50);
  }
  return {
    port,
    version,
    settings: 'appendonly yes, appendfsync everysec, save ""',
    destroy() {
      proc.kill('SIGTERM');
      setTimeout(() => fs.rmSync(dir, { recursive: true, force: true }), 500).unref();
    },
  };
}

function asPostgres(args) {
  const result = process.getuid() === 0 ? spawnSync('runuser', ['-u', 'postgres', '--', ...args], { encoding: 'utf8' }) : spawnSync(args[0], args.slice(1), { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`${args.join(' ')} failed: ${result.stderr || result.stdout}`);
  return result.stdout;
}

async function startPostgres() {
  const bin = ['/usr/local/bin', '/usr/lib/postgresql/15/bin'].find((dir) => fs.existsSync(path.join(dir, 'initdb')));
  if (!bin) throw new Error('initdb/pg_ctl not found');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'peers-pg-'));
  fs.chmodSync(dir, 0o755);
  if (process.getuid() === 0) execFileSync('chown', ['postgres:postgres', dir]);
  const data = path.join(dir, 'data');
  asPostgres([path.join(bin, 'initdb'), '-D', data, '-U', 'postgres', '--auth=trust', '--no-instructions', '-E', 'UTF8', '--locale=C']);
  const port = await freePort();
  const settings = '-c fsync=on -c synchronous_commit=on -c max_connections=200';
  asPostgres([path.join(bin, 'pg_ctl'), '-D', data, '-l', path.join(dir, 'log'), '-o', `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 ${settings}`, '-w', 'start']);
  const version = asPostgres([path.join(bin, 'postgres'), '--version']).match(/\d+\.\d+/)[0];
  const { default: pg } = await import('pg');
  const adminUrl = `postgres://postgres@127.0.0.1:${port}/postgres`;
  let counter = 0;
  return {
    version,
    settings: 'fsync=on, synchronous_commit=on',
    async createDatabase() {
      const admin = new pg.Client({ connectionString: adminUrl });
      await admin.connect();
      const name = `bench_${process.pid}_${++counter}`;
      await admin.query(`create database ${name}`);
      await admin.end();
      return { url: `postgres://postgres@127.0.0.1:${port}/${name}`, name };
    },
    async dropDatabase(name) {
      const admin = new pg.Client({ connectionString: adminUrl });
      await admin.connect();
      await admin.query(`drop database if exists ${name} with (force)`);
      await admin.end();
    },
    destroy() {
      try {
        asPostgres([path.join(bin, 'pg_ctl'), '-D', data, '-m', 'fast', '-w', 'stop']);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Orchestrator

function runChild(name, measurement, env) {
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, [SELF, '--child', name, measurement, JSON.stringify(env)], {
      cwd: HERE,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, PROMISED_LOG_LEVEL: 'silent' },
    });
    let out = '';
    let err = '';
    proc.stdout.on('data', (d) => (out += d));
    proc.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => proc.kill('SIGKILL'), CHILD_TIMEOUT_MS);
    proc.on('close', (code, signal) => {
      clearTimeout(timer);
      const line = out.split('\n').find((l) => l.startsWith('RESULT '));
      if (code === 0 && line) resolve(JSON.parse(line.slice(7)));
      else resolve({ error: signal === 'SIGKILL' ? `timed out after ${CHILD_TIMEOUT_MS / 1000} s` : (err.trim().split('\n').slice(0, 3).join(' | ') || `exit ${code}`) });
    });
  });
}

async function waitForQuietMachine(maxMinutes, below = 0.7) {
  const t0 = Date.now();
  let load = os.loadavg()[0];
  while (load >= below && Date.now() - t0 < maxMinutes * 60_000) {
    process.stderr.write(`  load average ${load.toFixed(2)} ≥ ${below}: waiting (up to ${maxMinutes} min)…\n`);
    await sleep(30_000);
    load = os.loadavg()[0];
  }
  return load;
}

function parseArgs(argv) {
  const options = { systems: Object.keys(SYSTEMS).filter((s) => !SYSTEMS[s].unavailable), only: Object.keys(MEASUREMENTS), runs: null, wait: true, waitMinutes: 20, out: path.join(RESULTS_DIR, 'latest.json'), svg: SVG_OUT };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split('=');
    const value = () => inline ?? argv[++i];
    if (flag === '--systems') options.systems = value().split(',');
    else if (flag === '--only') options.only = value().split(',');
    else if (flag === '--runs') options.runs = Number(value());
    else if (flag === '--no-wait') options.wait = false;
    else if (flag === '--wait-minutes') options.waitMinutes = Number(value());
    else if (flag === '--out') options.out = path.resolve(value());
    else if (flag === '--svg') options.svg = path.resolve(value());
    else if (flag === '--n') value(); // read at the top of the file
    else throw new Error(`unknown argument ${argv[i]}`);
  }
  for (const s of options.systems) check(SYSTEMS[s], `unknown system ${s} (${Object.keys(SYSTEMS).join(', ')})`);
  for (const m of options.only) check(MEASUREMENTS[m], `unknown measurement ${m} (${Object.keys(MEASUREMENTS).join(', ')})`);
  return options;
}

const fmt = (n, digits = 0) => (Number.isFinite(n) ? n.toLocaleString('en', { minimumFractionDigits: digits, maximumFractionDigits: digits }) : '—');
const ratio = (r) => (Number.isFinite(r) ? `${r >= 10 ? r.toFixed(0) : r.toFixed(2)}×` : '—');

function printTable(headers, rows) {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells) => cells.map((c, i) => String(c).padEnd(widths[i])).join('  ');
  console.log(line(headers));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const row of rows) console.log(line(row));
}

function summarise(samples) {
  const ok = samples.filter((s) => !s.error && !s.unsupported);
  if (ok.length === 0) return { error: samples.find((s) => s.error)?.error, unsupported: samples.find((s) => s.unsupported)?.unsupported, samples };
  const keys = Object.keys(ok[0]).filter((k) => typeof ok[0][k] === 'number');
  const out = { samples, runs: ok.length };
  for (const k of keys) out[k] = median(ok.map((s) => s[k]));
  for (const k of Object.keys(ok[0]).filter((k) => typeof ok[0][k] === 'string')) out[k] = ok[0][k];
  if (ok.length < samples.length) out.failedRuns = samples.filter((s) => s.error).map((s) => s.error);
  return out;
}

/** Figures for one system in table form. */
function figures(r) {
  return {
    enqueue: r.enqueue?.perSecond,
    bulk: r.bulk?.perSecond,
    c1: r.c1?.perSecond,
    c10: r.c10?.perSecond,
    p50: r.latency?.p50Ms,
    p99: r.latency?.p99Ms,
    rss: r.c10?.maxRssMB,
    chain: r.chain?.ms,
  };
}

function buildSvg(results, systems) {
  // Grouped bars, log scale: four throughput measurements, one bar per system.
  const groups = [
    ['enqueue', 'enqueue 1-by-1'],
    ['bulk', 'bulk enqueue'],
    ['c1', 'process c=1'],
    ['c10', 'process c=10'],
  ];
  const colours = ['#1f6feb', '#8957e5', '#d1242f', '#bf8700', '#1a7f37', '#0969da99', '#57606a', '#cf222e99'];
  const names = systems.filter((s) => !SYSTEMS[s].only);
  const W = 900;
  const H = 420;
  const left = 70;
  const top = 40;
  const bottom = 80;
  const plotH = H - top - bottom;
  const plotW = W - left - 20;
  const minLog = 2; // 100/s
  const maxLog = 6; // 1,000,000/s
  const y = (v) => top + plotH - ((Math.log10(Math.max(v, 10 ** minLog)) - minLog) / (maxLog - minLog)) * plotH;
  const groupW = plotW / groups.length;
  const barW = Math.min(22, (groupW - 20) / names.length);
  const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;');
  let svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">\n`;
  svg += `<rect width="${W}" height="${H}" fill="#fff"/>\n`;
  svg += `<text x="${left}" y="22" font-size="15" font-weight="bold">No-op jobs per second, 10,000 jobs, median of runs (log scale; higher is better)</text>\n`;
  for (let e = minLog; e <= maxLog; e++) {
    const yy = y(10 ** e);
    svg += `<line x1="${left}" x2="${W - 20}" y1="${yy}" y2="${yy}" stroke="#ddd"/><text x="${left - 6}" y="${yy + 4}" text-anchor="end">${fmt(10 ** e)}</text>\n`;
  }
  groups.forEach(([key, title], g) => {
    const x0 = left + g * groupW + (groupW - barW * names.length) / 2;
    names.forEach((name, k) => {
      const v = figures(results[name] ?? {})[key];
      const x = x0 + k * barW;
      if (Number.isFinite(v)) {
        svg += `<rect x="${x.toFixed(1)}" y="${y(v).toFixed(1)}" width="${(barW - 2).toFixed(1)}" height="${(top + plotH - y(v)).toFixed(1)}" fill="${colours[k % colours.length]}"><title>${esc(SYSTEMS[name].label)}: ${fmt(v)}/s</title></rect>\n`;
      } else {
        svg += `<text x="${(x + barW / 2).toFixed(1)}" y="${top + plotH - 4}" text-anchor="middle" font-size="10" fill="#999">–</text>\n`;
      }
    });
    svg += `<text x="${(left + g * groupW + groupW / 2).toFixed(1)}" y="${top + plotH + 18}" text-anchor="middle" font-weight="bold">${title}</text>\n`;
  });
  names.forEach((name, k) => {
    const col = k % 4;
    const row = Math.floor(k / 4);
    const lx = left + col * 200;
    const ly = H - 42 + row * 18;
    svg += `<rect x="${lx}" y="${ly - 10}" width="12" height="12" fill="${colours[k % colours.length]}"/><text x="${lx + 16}" y="${ly}">${esc(SYSTEMS[name].label)}</text>\n`;
  });
  svg += '</svg>\n';
  return svg;
}

async function main() {
  const options = parseArgs(process.argv.slice(2));
  check(fs.existsSync(DIST), `${DIST} does not exist: run npm run build at the repository root first`);
  for (const [name, system] of Object.entries(SYSTEMS)) if (system.unavailable && !options.systems.includes(name)) console.log(`Not raced: ${system.label}: ${system.unavailable}.`);
  const loadBefore = os.loadavg()[0];
  const load = options.wait ? await waitForQuietMachine(options.waitMinutes) : loadBefore;
  const meta = {
    date: new Date().toISOString(),
    node: process.version,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    platform: `${os.type()} ${os.release()}`,
    commit: (() => {
      try {
        return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
      } catch {
        return 'unknown';
      }
    })(),
    loadAverageAtStart: load,
    workload: { jobs: N, bulkChunk: BULK_CHUNK, latencyRate: LATENCY_RATE, latencySeconds: LATENCY_SECONDS, chain: CHAIN, idlePollMs: IDLE_POLL_MS },
    versions: {},
  };
  for (const p of ['bullmq', 'pg-boss', 'graphile-worker', 'plainjob', 'liteque', 'openworkflow', 'better-sqlite3']) {
    try {
      meta.versions[p] = JSON.parse(fs.readFileSync(path.join(HERE, 'node_modules', p, 'package.json'), 'utf8')).version;
    } catch {
      meta.versions[p] = 'not installed';
    }
  }
  const needs = (store) => options.systems.some((s) => SYSTEMS[s].store === store);
  const redis = needs('redis') ? await startRedis() : null;
  const postgres = needs('postgres') ? await startPostgres() : null;
  if (redis) meta.versions.redis = redis.version;
  if (postgres) meta.versions.postgres = postgres.version;
  process.stderr.write(`peers bench: node ${meta.node}, ${meta.cpus} cores, load ${load.toFixed(2)}; systems ${options.systems.join(', ')}\n`);

  const results = {};
  const t0 = Date.now();
  try {
    for (const name of options.systems) {
      results[name] = { durability: SYSTEMS[name].durability };
      for (const m of options.only) {
        if (SYSTEMS[name].only && !SYSTEMS[name].only.includes(m)) continue;
        const runs = options.runs ?? MEASUREMENTS[m].runs;
        const samples = [];
        for (let r = 0; r < runs; r++) {
          const env = { redisPort: redis?.port };
          let db = null;
          let dir = null;
          if (SYSTEMS[name].store === 'postgres') {
            db = await postgres.createDatabase();
            env.database = db.url;
          } else if (SYSTEMS[name].store === 'sqlite') {
            dir = fs.mkdtempSync(path.join(os.tmpdir(), `peers-${name}-`));
            env.dir = dir;
          }
          const sample = await runChild(name, m, env);
          if (db) await postgres.dropDatabase(db.name).catch(() => {});
          if (dir) fs.rmSync(dir, { recursive: true, force: true });
          samples.push(sample);
          const brief = sample.error ? `ERROR ${sample.error}` : sample.unsupported ? sample.unsupported : sample.perSecond ? `${fmt(sample.perSecond)}/s` : sample.p50Ms !== undefined ? `p50 ${fmt(sample.p50Ms, 2)} p99 ${fmt(sample.p99Ms, 2)} ms` : `${fmt(sample.ms)} ms`;
          process.stderr.write(`  ${name.padEnd(12)} ${m.padEnd(8)} run ${r + 1}/${runs}: ${brief}  (rss ${fmt(sample.maxRssMB)} MB)\n`);
          if (sample.error || sample.unsupported) break;
        }
        results[name][m] = summarise(samples);
      }
    }
  } finally {
    redis?.destroy();
    postgres?.destroy();
  }
  meta.seconds = (Date.now() - t0) / 1000;
  meta.loadAverageAtEnd = os.loadavg()[0];

  // Figures
  const names = options.systems;
  console.log('');
  console.log(`promised vs peers — commit ${meta.commit}, node ${meta.node}, ${meta.cpus} cores (${meta.cpuModel}), ${meta.date}`);
  console.log(`load average (1 min) at start ${meta.loadAverageAtStart.toFixed(2)}, at end ${meta.loadAverageAtEnd.toFixed(2)}; ${fmt(meta.seconds)} s`);
  console.log('');
  const headers = ['system', 'enqueue 1-by-1 /s', 'bulk /s', 'process c=1 /s', 'process c=10 /s', 'latency p50 / p99 ms', 'worker RSS MB', `chain ${fmt(CHAIN)} s`];
  printTable(
    headers,
    names.map((n) => {
      const f = figures(results[n]);
      return [SYSTEMS[n].label, fmt(f.enqueue), fmt(f.bulk), fmt(f.c1), fmt(f.c10), Number.isFinite(f.p50) ? `${fmt(f.p50, 2)} / ${fmt(f.p99, 2)}` : '—', fmt(f.rss), Number.isFinite(f.chain) ? fmt(f.chain / 1000, 2) : '—'];
    }),
  );
  console.log('');
  console.log('Durability:');
  for (const n of names) console.log(`  ${SYSTEMS[n].label.padEnd(30)} ${SYSTEMS[n].durability}`);

  // Ratios against promised on SQLite: throughput promised ÷ peer; latency, RSS, chain time peer ÷ promised.
  const ratios = {};
  if (results.promised) {
    const us = figures(results.promised);
    console.log('');
    console.log('Ratios, promised (SQLite) against each peer; > 1× means promised is ahead.');
    console.log('Throughput: promised ÷ peer. Latency, RSS and chain time: peer ÷ promised.');
    console.log('');
    const rows = [];
    for (const n of names.filter((n) => n !== 'promised')) {
      const f = figures(results[n]);
      ratios[n] = {
        enqueue: us.enqueue / f.enqueue,
        bulk: us.bulk / f.bulk,
        c1: us.c1 / f.c1,
        c10: us.c10 / f.c10,
        p50: f.p50 / us.p50,
        p99: f.p99 / us.p99,
        rss: f.rss / us.rss,
        chain: f.chain / us.chain,
      };
      const r = ratios[n];
      rows.push([SYSTEMS[n].label, ratio(r.enqueue), ratio(r.bulk), ratio(r.c1), ratio(r.c10), `${ratio(r.p50)} / ${ratio(r.p99)}`, ratio(r.rss), ratio(r.chain)]);
    }
    printTable(['peer', 'enqueue 1-by-1', 'bulk', 'process c=1', 'process c=10', 'latency p50 / p99', 'RSS', 'chain'], rows);
  }
  const failures = [];
  for (const n of names) for (const [m, r] of Object.entries(results[n])) if (r && typeof r === 'object' && (r.error || r.failedRuns)) failures.push(`${n} ${m}: ${r.error ?? r.failedRuns.join('; ')}`);
  if (failures.length) {
    console.log('');
    console.log('Failures:');
    for (const f of failures) console.log(`  ${f}`);
  }

  fs.mkdirSync(path.dirname(options.out), { recursive: true });
  fs.writeFileSync(options.out, JSON.stringify({ meta, results, ratios }, null, 2) + '\n');
  console.log(`\nResults written to ${path.relative(process.cwd(), options.out)}`);
  if (options.svg) {
    fs.writeFileSync(options.svg, buildSvg(results, names));
    console.log(`Chart written to ${path.relative(process.cwd(), options.svg)}`);
  }
}

// Other benches (bench/postgres.js) import the adapters and helpers; only run when started as a script.
export { adapters, callCounter, check, sleep, SYSTEMS, waitForQuietMachine };

const isEntry = process.argv[1] && path.resolve(process.argv[1]) === SELF;
if (!isEntry) {
  // imported
} else if (process.argv[2] === '--child') {
  const [name, measurement, envJson] = process.argv.slice(3);
  child(name, measurement, JSON.parse(envJson)).then(
    (result) => {
      process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
      process.exit(0);
    },
    (error) => {
      console.error(error?.stack ?? error);
      process.exit(1);
    },
  );
} else if (Number(process.versions.node.split('.')[0]) < 22) {
  console.error(`Node ${process.version}: the peers need Node 22.18+; run \`npm run bench\` (the project's pinned Node) instead of \`node run.js\`.`);
  process.exit(1);
} else {
  main().catch((error) => {
    console.error(error);
    process.exit(1);
  });
}
