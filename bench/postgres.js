// PostgreSQL throughput: N pre-enqueued no-op jobs drained by 1, 2 and 4 worker processes, by
// promised and, in the same run on the same throwaway server, by pg-boss and graphile-worker (the
// peers are driven by the adapters of bench/peers/run.js, imported, with bench/peers' own
// node_modules). Over the built output (`dist/`); the server is started here (initdb + pg_ctl in a
// temp folder on a free loopback port, fsync=on, synchronous_commit=on) and removed afterwards.
//
//   npm run build && (cd bench/peers && npm install)    # once
//   node bench/postgres.js                              # N=10000, concurrency 10 per process, 1 run
//   node bench/postgres.js --n 2000 --runs 1 --systems promised,graphile   # a quick look
//   node bench/postgres.js --no-peers                   # promised only (no bench/peers install)
//   node bench/postgres.js --runs 2 --top               # median of 2; --top lists each cell's statements
//   node bench/postgres.js --wait-load 2 --wait-minutes 10   # first wait for the 1-min load < 2
//
// Per cell: a fresh database; the N jobs (payload { i }) are enqueued before the workers start and
// not timed; W worker processes open their client and report ready; the clock runs from "go" until
// the store shows N jobs finished (polled every 50 ms). Each cell checks itself: the workers'
// handler calls, merged, hit every i exactly once, and the store shows every job finished (promised:
// completed with one attempt; pg-boss: state completed, no retry; graphile-worker: its table empty).
// Cells are interleaved (for each worker count, each system) so that the shared machine's load
// drifts over all systems alike. Prints jobs/s, the ratio to the system's own 1-worker figure, the
// per-process efficiency, server CPU, worker CPU, statements, transactions and WAL per job, and
// promised ÷ peer at each worker count; then how many worker hosts one server could feed.

import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import pg from 'pg';

const SELF = fileURLToPath(import.meta.url);
const ROOT = path.join(path.dirname(SELF), '..');
const DIST = path.join(ROOT, 'dist', 'index.js');
const PEERS = path.join(path.dirname(SELF), 'peers', 'run.js');
const PEERS_MODULES = path.join(path.dirname(SELF), 'peers', 'node_modules');
const POLL_MS = 50; // the poll's own count(*) is in the server CPU figures: ~1 % of a core, alike for all
const args = process.argv.slice(2);
const option = (name, fallback) => {
  const index = args.indexOf(`--${name}`);
  return index === -1 ? fallback : args[index + 1];
};

// How each system is set up. Concurrency c per process everywhere.
const SYSTEMS = {
  promised: {
    label: 'promised',
    setup: (c) => `createEngine({ concurrency: ${c} }), defaults otherwise (pool 10 + 1 LISTEN connection, changeCheckIntervalMs 50)`,
    doneSql: `select count(*)::int as n from promises where status = 'completed'`,
    badSql: `select count(*)::int as n from promises where status <> 'completed' or attempts <> 1`,
  },
  pgboss: {
    label: 'pg-boss',
    setup: (c) => `one work() per process, batchSize ${c}, pollingIntervalSeconds 0.5 (its minimum), notifyWorker(id) after a full batch so work() does not wait out the interval; supervise/schedule off; pool max 12`,
    doneSql: `select count(*)::int as n from pgboss.job where name = 'bench' and state = 'completed'`,
    badSql: `select count(*)::int as n from pgboss.job where name = 'bench' and (state <> 'completed' or retry_count <> 0)`,
  },
  'pgboss-fetch': {
    label: 'pg-boss (fetch loop)',
    setup: (c) => `${c} loops of fetch(batchSize 1) → handler → await complete(), as bench/peers/run.js drives it`,
    doneSql: `select count(*)::int as n from pgboss.job where name = 'bench' and state = 'completed'`,
    badSql: `select count(*)::int as n from pgboss.job where name = 'bench' and (state <> 'completed' or retry_count <> 0)`,
  },
  graphile: {
    label: 'graphile-worker',
    setup: (c) => `run({ concurrency: ${c} }) with its defaults (LISTEN/NOTIFY, no local queue, no batched completion)`,
    // Completed jobs are deleted.
    doneSql: (n) => `select ${n} - count(*)::int as n from graphile_worker._private_jobs`,
    badSql: `select count(*)::int as n from graphile_worker._private_jobs`,
  },
};

if (args[0] === '--worker') await worker(args[1], args[2], Number(args[3]), Number(args[4]));
else await main();

// ---- a worker process: one system, one client, concurrency c ----

async function worker(system, url, concurrency, n) {
  const calls = new Uint8Array(n);
  const handle = (i) => {
    calls[i]++;
  };
  let start;
  let close;
  if (system === 'promised') {
    const { createEngine } = await import(pathToFileURL(DIST).href);
    const engine = await createEngine({ database: url, concurrency, cleanupIntervalMs: 0, stopTimeoutMs: 2_000 });
    engine.task('noop', async (payload) => handle(payload.i));
    start = () => engine.start();
    close = () => engine.stop();
  } else {
    const { adapters } = await import(pathToFileURL(PEERS).href);
    const sys = await adapters[system === 'pgboss-fetch' ? 'pgboss' : system]({ database: url, concurrency });
    let running;
    start = async () => {
      running = system === 'pgboss' ? await sys.work(concurrency, handle) : await sys.worker(concurrency, handle);
    };
    close = async () => {
      await running?.stop();
      await sys.close();
    };
  }
  process.send({ ready: true });
  process.on('message', async (message) => {
    if (message === 'go') {
      const cpu = process.cpuUsage();
      const t = performance.now();
      await start();
      const startMs = performance.now() - t;
      process.once('message', async () => {
        const used = process.cpuUsage(cpu);
        await close();
        const handled = [];
        for (let i = 0; i < n; i++) for (let k = 0; k < calls[i]; k++) handled.push(i);
        process.send({ cpuMs: (used.user + used.system) / 1000, handled, startMs });
        process.disconnect();
      });
    }
  });
}

// ---- the orchestrator ----

async function main() {
  const n = Number(option('n', 10_000));
  const concurrency = Number(option('concurrency', 10));
  const runs = Number(option('runs', 1));
  const peersInstalled = fs.existsSync(path.join(PEERS_MODULES, 'pg-boss')) && fs.existsSync(path.join(PEERS_MODULES, 'graphile-worker'));
  let systems = option('systems', args.includes('--no-peers') ? 'promised' : 'promised,pgboss,pgboss-fetch,graphile').split(',');
  for (const s of systems) if (!SYSTEMS[s]) throw new Error(`unknown system ${s} (${Object.keys(SYSTEMS).join(', ')})`);
  if (!peersInstalled && systems.some((s) => s !== 'promised')) {
    console.log('bench/peers/node_modules lacks pg-boss or graphile-worker: run `npm install` in bench/peers for the peers; measuring promised only.');
    systems = ['promised'];
  }
  const counts = String(option('workers', '1,2,4')).split(',').map(Number);
  // Optionally wait for a quieter machine (bench/peers' own wait, imported): --wait-load 2 --wait-minutes 10.
  if (args.includes('--wait-load')) {
    const { waitForQuietMachine } = await import(pathToFileURL(PEERS).href);
    await waitForQuietMachine(Number(option('wait-minutes', 10)), Number(option('wait-load', 0.7)));
  }
  const loadAtStart = os.loadavg();
  const server = await startPostgres();
  const peerVersion = (p) => {
    try {
      return JSON.parse(fs.readFileSync(path.join(PEERS_MODULES, p, 'package.json'), 'utf8')).version;
    } catch {
      return '?';
    }
  };
  const versions = { promised: git('rev-parse', '--short', 'HEAD'), pgboss: peerVersion('pg-boss'), 'pgboss-fetch': peerVersion('pg-boss'), graphile: peerVersion('graphile-worker') };
  const t0 = Date.now();
  const results = {};
  try {
    console.log(`PostgreSQL ${server.version} (${server.settings}) on ${os.cpus().length} cores (${os.cpus()[0].model}), node ${process.version}, commit ${versions.promised}`);
    console.log(`N=${n} pre-enqueued no-op jobs per cell, concurrency ${concurrency} per worker process, ${runs} run(s) per cell (median; mean of the middle two for an even count)`);
    console.log(`1-minute load average at start: ${loadAtStart[0].toFixed(2)} (5 min ${loadAtStart[1].toFixed(2)}, 15 min ${loadAtStart[2].toFixed(2)})`);
    for (const s of systems) console.log(`  ${SYSTEMS[s].label}${s === 'promised' ? '' : ` ${versions[s]}`}: ${SYSTEMS[s].setup(concurrency)}`);
    for (const workers of counts) {
      for (const system of systems) {
        const samples = [];
        for (let run = 0; run < runs; run++) samples.push(await measure(server, system, workers, n, concurrency));
        (results[system] ??= {})[workers] = { ...medianOf(samples), samples };
      }
    }
  } finally {
    server.destroy();
  }
  const loadAtEnd = os.loadavg();
  const seconds = (Date.now() - t0) / 1000;

  const us = (x) => `${x.toFixed(0)} µs`;
  console.log(`\n1-minute load average: ${loadAtStart[0].toFixed(2)} at start, ${loadAtEnd[0].toFixed(2)} at end; ${seconds.toFixed(0)} s`);
  const rows = [];
  for (const system of systems) {
    const base = results[system][counts[0]].perSecond;
    for (const workers of counts) {
      const r = results[system][workers];
      rows.push([
        SYSTEMS[system].label,
        workers,
        r.perSecond.toFixed(0),
        (r.perSecond / base).toFixed(2) + '×',
        `${((r.perSecond / base / (workers / counts[0])) * 100).toFixed(0)} %`,
        us((r.serverCpuMs * 1000) / n),
        us((r.workerCpuMs * 1000) / n),
        r.statementsPerJob === null ? '—' : r.statementsPerJob.toFixed(2),
        r.commitsPerJob.toFixed(2),
        r.walBytesPerJob.toFixed(0),
        runs > 1 ? r.samples.map((x) => x.perSecond.toFixed(0)).join(' / ') : '',
      ]);
    }
  }
  console.log('');
  table(['system', 'workers', 'jobs/s', '× own 1 worker', 'per-process', 'server CPU/job', 'worker CPU/job', 'statements/job', 'commits/job', 'WAL B/job', runs > 1 ? 'runs' : ''], rows);
  const peers = systems.filter((s) => s !== 'promised');
  if (results.promised && peers.length) {
    console.log('\npromised ÷ peer (jobs/s; > 1× means promised is ahead)');
    table(['workers', ...peers.map((p) => SYSTEMS[p].label)], counts.map((w) => [w, ...peers.map((p) => `${(results.promised[w].perSecond / results[p][w].perSecond).toFixed(2)}×`)]));
  }
  if (results.promised) {
    // The server's CPU per promise (claim and completion transactions, NOTIFY, WAL) bounds what
    // one server core can carry; a worker host is bounded by its own CPU per promise.
    const one = results.promised[counts[0]];
    const serverUs = (one.serverCpuMs * 1000) / n;
    const perCore = 1e6 / serverUs;
    console.log(`\npromised: server CPU ≈ ${serverUs.toFixed(0)} µs per promise (claim + completion) → ≈ ${perCore.toFixed(0)} promises/s per server core.`);
    console.log(`One 1-worker host here did ${one.perSecond.toFixed(0)}/s, so one server core could feed ≈ ${(perCore / one.perSecond).toFixed(1)} such hosts; an 8-core server ≈ ${((8 * perCore) / one.perSecond).toFixed(0)}, before WAL-flush, NOTIFY-lock and index contention.`);
  }
  fs.mkdirSync(path.join(path.dirname(SELF), 'results'), { recursive: true });
  const out = path.join(path.dirname(SELF), 'results', 'postgres.json');
  fs.writeFileSync(out, JSON.stringify({ n, concurrency, runs, versions, server: { version: server.version, settings: server.settings }, loadAverage: { start: loadAtStart, end: loadAtEnd }, seconds, setup: Object.fromEntries(systems.map((s) => [s, SYSTEMS[s].setup(concurrency)])), results, at: new Date().toISOString() }, null, 2));
  console.log(`\nResults written to ${path.relative(process.cwd(), out)}`);
}

async function enqueue(system, url, n) {
  const chunks = [];
  for (let i = 0; i < n; i += 1_000) chunks.push(Array.from({ length: Math.min(1_000, n - i) }, (_, k) => i + k));
  if (system === 'promised') {
    const { createEngine } = await import(pathToFileURL(DIST).href);
    const producer = await createEngine({ database: url, cleanupIntervalMs: 0 });
    producer.task('noop', async () => null);
    for (const is of chunks) await producer.enqueueMany(is.map((i) => ({ type: 'noop', payload: { i } })));
    await producer.stop();
  } else {
    const { adapters } = await import(pathToFileURL(PEERS).href);
    const sys = await adapters[system === 'pgboss-fetch' ? 'pgboss' : system]({ database: url, concurrency: 1 });
    for (const is of chunks) await sys.bulk(is);
    await sys.close();
  }
}

async function measure(server, system, workers, n, concurrency) {
  const { url, name } = await createDatabase(server.adminUrl);
  await enqueue(system, url, n);
  const spec = SYSTEMS[system];
  const doneSql = typeof spec.doneSql === 'function' ? spec.doneSql(n) : spec.doneSql;

  const children = Array.from({ length: workers }, () => spawn(process.execPath, [SELF, '--worker', system, url, String(concurrency), String(n)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env: { ...process.env, PROMISED_LOG_LEVEL: 'silent' } }));
  await Promise.all(children.map((child) => new Promise((resolve, reject) => {
    child.once('message', resolve);
    child.once('exit', (code) => reject(new Error(`${system} worker exited (${code}) before it was ready`)));
  })));
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await sleep(300); // let the setup statements' stats reach the server before the reset
  const before = await serverCounters(server, name, { reset: true });
  const serverCpuBefore = serverCpuMs(server);
  const started = performance.now();
  for (const child of children) child.send('go');
  const deadline = Date.now() + 600_000;
  for (;;) {
    const { rows } = await client.query(doneSql);
    if (rows[0].n >= n) break;
    if (Date.now() > deadline) throw new Error(`${system} with ${workers} worker(s): only ${rows[0].n} of ${n} done after 10 minutes`);
    await sleep(POLL_MS);
  }
  const seconds = (performance.now() - started) / 1000;
  const serverCpu = serverCpuMs(server) - serverCpuBefore;
  const stopped = await Promise.all(
    children.map((child) => new Promise((resolve) => {
      child.once('message', resolve);
      child.send('stop');
    })),
  );
  await Promise.all(children.map((child) => (child.exitCode === null ? new Promise((resolve) => child.once('exit', resolve)) : null)));
  const { rows } = await client.query(spec.badSql);
  await client.end();
  await sleep(300); // backends flush their statistics when they exit
  const after = await serverCounters(server, name);
  // Exactly once: the handler calls of all workers together hit every job index once.
  const calls = new Uint8Array(n);
  let total = 0;
  for (const { handled } of stopped) for (const i of handled) {
    calls[i]++;
    total++;
  }
  const missing = calls.filter((c) => c === 0).length;
  const duplicates = total - (n - missing);
  if (missing || duplicates) throw new Error(`${system} with ${workers} worker(s): ${missing} jobs never handled, ${duplicates} handled twice`);
  if (rows[0].n !== 0) throw new Error(`${system} with ${workers} worker(s): ${rows[0].n} jobs not finished exactly once in the store`);
  const top = server.statStatements && args.includes('--top') ? await topStatements(server, name, n) : null;
  await dropDatabase(server.adminUrl, name);
  const result = {
    perSecond: n / seconds,
    seconds,
    serverCpuMs: serverCpu,
    workerCpuMs: stopped.reduce((a, b) => a + b.cpuMs, 0),
    statementsPerJob: after.statements === null ? null : (after.statements - before.statements) / n,
    commitsPerJob: (after.commits - before.commits) / n,
    walBytesPerJob: (after.walBytes - before.walBytes) / n,
    startMs: Math.max(...stopped.map((x) => x.startMs)),
  };
  console.log(`  ${SYSTEMS[system].label.padEnd(20)} ${workers} worker(s): ${result.perSecond.toFixed(0).padStart(6)}/s (${seconds.toFixed(2)} s; start() ${result.startMs.toFixed(0)} ms), server CPU ${((serverCpu * 1000) / n).toFixed(0)} µs/job, ${total} handler calls, each job once`);
  if (top) for (const row of top) console.log(`      ${row.perJob.toFixed(3).padStart(6)}/job  ${row.msPerCall.toFixed(3).padStart(7)} ms/call  ${row.query}`);
  return result;
}

/** Field by field: the middle sample, or the mean of the two middle ones for an even count. */
function medianOf(samples) {
  const out = {};
  for (const key of Object.keys(samples[0])) {
    const values = samples.map((x) => x[key]).filter((v) => typeof v === 'number').sort((a, b) => a - b);
    const mid = Math.floor(values.length / 2);
    out[key] = values.length === 0 ? null : values.length % 2 ? values[mid] : (values[mid - 1] + values[mid]) / 2;
  }
  return out;
}

/** Statements run, transactions committed (in this database) and WAL written (cluster-wide). */
async function serverCounters(server, database, { reset = false } = {}) {
  const admin = new pg.Client({ connectionString: server.adminUrl });
  await admin.connect();
  try {
    if (reset && server.statStatements) await admin.query('select pg_stat_statements_reset()');
    const commits = (await admin.query(`select xact_commit::float8 as n from pg_stat_database where datname = $1`, [database])).rows[0].n;
    const walBytes = (await admin.query(`select wal_bytes::float8 as n from pg_stat_wal`)).rows[0].n;
    let statements = null;
    if (server.statStatements) {
      statements = (await admin.query(`select coalesce(sum(calls), 0)::float8 as n from pg_stat_statements s join pg_database d on d.oid = s.dbid where d.datname = $1`, [database])).rows[0].n;
    }
    return { commits, walBytes, statements };
  } finally {
    await admin.end();
  }
}

/** The statements run in the timed window, most frequent first (`--top`). */
async function topStatements(server, database, n) {
  const admin = new pg.Client({ connectionString: server.adminUrl });
  await admin.connect();
  try {
    const { rows } = await admin.query(
      `select calls::float8 as calls, total_exec_time as ms, left(regexp_replace(query, '\\s+', ' ', 'g'), 140) as query
         from pg_stat_statements s join pg_database d on d.oid = s.dbid where d.datname = $1 order by calls desc limit 12`,
      [database],
    );
    return rows.map((r) => ({ perJob: r.calls / n, msPerCall: r.ms / r.calls, query: r.query }));
  } finally {
    await admin.end();
  }
}

function table(headers, rows) {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells) => cells.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join('  ');
  console.log(line(headers));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const row of rows) console.log(line(row));
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function git(...command) {
  try {
    return execFileSync('git', command, { cwd: ROOT, encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

// ---- a throwaway server, as test/helpers/postgres.ts starts it ----

function serverCpuMs(server) {
  // utime + stime of the postmaster and every backend it forked, in clock ticks (100/s on Linux).
  let ticks = 0;
  for (const pid of fs.readdirSync('/proc').filter((entry) => /^\d+$/.test(entry))) {
    let stat;
    try {
      stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      continue;
    }
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ppid = Number(fields[1]);
    if (Number(pid) === server.pid || ppid === server.pid) ticks += Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]);
  }
  return ticks * 10;
}

async function createDatabase(adminUrl) {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  const name = `bench_${Date.now().toString(36)}_${Math.floor(Math.random() * 1e6)}`;
  await admin.query(`create database ${name}`);
  await admin.end();
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return { url: url.toString(), name };
}

async function dropDatabase(adminUrl, name) {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`drop database if exists ${name} with (force)`);
  await admin.end();
}

function asPostgres(command) {
  const quoted = command.map((part) => `'${part.replace(/'/g, `'\\''`)}'`).join(' ');
  const result = process.getuid() === 0 ? spawnSync('su', ['postgres', '-s', '/bin/sh', '-c', quoted], { encoding: 'utf8' }) : spawnSync('/bin/sh', ['-c', quoted], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`${command.join(' ')} failed: ${result.stderr || result.stdout}`);
  return result.stdout;
}

async function startPostgres() {
  const bin = ['/usr/local/bin', '/usr/lib/postgresql/15/bin'].find((dir) => fs.existsSync(path.join(dir, 'initdb')));
  if (!bin) throw new Error('initdb/pg_ctl not found; install PostgreSQL to run this benchmark');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'promised-bench-pg-'));
  fs.chmodSync(dir, 0o755);
  if (process.getuid() === 0) execFileSync('chown', ['postgres:postgres', dir]);
  const data = path.join(dir, 'data');
  asPostgres([path.join(bin, 'initdb'), '-D', data, '-U', 'postgres', '--auth=trust', '--no-instructions', '-E', 'UTF8', '--locale=C']);
  const port = await new Promise((resolve) => {
    const probe = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
  // The same settings as bench/peers/run.js gives every PostgreSQL peer; pg_stat_statements (if the
  // server has it) only to count the statements each system runs per job, for all alike.
  const statStatements = [path.join(path.dirname(fs.realpathSync(path.join(bin, 'postgres'))), '..', 'lib'), '/usr/lib/postgresql/15/lib'].some((lib) => fs.existsSync(path.join(lib, 'pg_stat_statements.so')));
  const settings = ['fsync=on', 'synchronous_commit=on', 'max_connections=200', ...(statStatements ? ['shared_preload_libraries=pg_stat_statements'] : [])];
  asPostgres([path.join(bin, 'pg_ctl'), '-D', data, '-l', path.join(dir, 'log'), '-o', `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 ${settings.map((x) => `-c ${x}`).join(' ')}`, '-w', 'start']);
  const pid = Number(fs.readFileSync(path.join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
  const version = asPostgres([path.join(bin, 'postgres'), '--version']).match(/\d+\.\d+/)[0];
  const adminUrl = `postgres://postgres@127.0.0.1:${port}/postgres`;
  if (statStatements) {
    const admin = new pg.Client({ connectionString: adminUrl });
    await admin.connect();
    await admin.query('create extension if not exists pg_stat_statements');
    await admin.end();
  }
  return {
    adminUrl,
    pid,
    version,
    statStatements,
    settings: `${settings.join(', ')}, everything else initdb's defaults`,
    destroy() {
      try {
        asPostgres([path.join(bin, 'pg_ctl'), '-D', data, '-m', 'fast', '-w', 'stop']);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
