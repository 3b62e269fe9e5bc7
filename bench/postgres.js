// PostgreSQL throughput: no-op promises drained by 1, 2 and 4 worker processes, over the built
// output (`dist/`), on a throwaway server this script starts (initdb + pg_ctl in a temp folder on
// a free loopback port, fsync on) and removes. Prints throughput, the ratio to one worker, the
// efficiency per process, and what each promise costs the server in CPU, from which it estimates
// how many worker hosts one server could feed.
//
//   npm run build && node bench/postgres.js            # N=5000 per run, concurrency 10 per worker
//   node bench/postgres.js --n 10000 --concurrency 20 --runs 3
//
// Each run uses a fresh database; the promises are enqueued before the workers start, and the
// clock runs from "go" until the last one is completed. Each run checks itself: every promise
// completed, each with exactly one attempt.

import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import pg from 'pg';

const SELF = fileURLToPath(import.meta.url);
const DIST = path.join(path.dirname(SELF), '..', 'dist', 'index.js');
const args = process.argv.slice(2);
const option = (name, fallback) => {
  const index = args.indexOf(`--${name}`);
  return index === -1 ? fallback : Number(args[index + 1]);
};

if (args[0] === '--worker') await worker(args[1], Number(args[2]));
else await main();

async function worker(url, concurrency) {
  const { createEngine } = await import(pathToFileURL(DIST).href);
  const engine = await createEngine({ database: url, concurrency, cleanupIntervalMs: 0, stopTimeoutMs: 2_000 });
  engine.task('noop', async () => null);
  process.send({ ready: true });
  process.on('message', async (message) => {
    if (message === 'go') {
      const cpu = process.cpuUsage();
      await engine.start();
      process.once('message', async () => {
        const used = process.cpuUsage(cpu);
        await engine.stop();
        process.send({ cpuMs: (used.user + used.system) / 1000 });
        process.disconnect();
      });
    }
  });
}

async function main() {
  const n = option('n', 5_000);
  const concurrency = option('concurrency', 10);
  const runs = option('runs', 1);
  const server = await startPostgres();
  try {
    console.log(`PostgreSQL ${server.version} on ${os.cpus().length} cores (${os.cpus()[0].model}); N=${n} no-op promises, concurrency ${concurrency} per worker, fsync on`);
    const results = [];
    for (const workers of [1, 2, 4]) {
      const samples = [];
      for (let run = 0; run < runs; run++) samples.push(await measure(server, workers, n, concurrency));
      samples.sort((a, b) => a.perSecond - b.perSecond);
      results.push({ workers, ...samples[Math.floor(samples.length / 2)] });
    }
    const base = results[0].perSecond;
    console.log('\nworkers  promises/s  ×1 worker  per-process  server CPU/promise  worker CPU/promise');
    for (const r of results) {
      console.log(
        `${String(r.workers).padStart(7)}  ${r.perSecond.toFixed(0).padStart(10)}  ${(r.perSecond / base).toFixed(2).padStart(9)}  ${((r.perSecond / base / r.workers) * 100).toFixed(0).padStart(10)}%  ${(r.serverCpuMs * 1000 / n).toFixed(0).padStart(15)} µs  ${(r.workerCpuMs * 1000 / n).toFixed(0).padStart(15)} µs`,
      );
    }
    // The server's CPU per promise (claim + completion transactions, NOTIFY, WAL) bounds what one
    // server core can carry; a host with spare cores is bounded by its own worker CPU per promise.
    const serverCostUs = results[0].serverCpuMs * 1000 / n;
    const perServerCore = 1e6 / serverCostUs;
    const perHost = results[0].perSecond;
    console.log(`\nserver cost ≈ ${serverCostUs.toFixed(0)} µs CPU per promise → ≈ ${perServerCore.toFixed(0)} promises/s per server core;`);
    console.log(`one 1-worker host here does ${perHost.toFixed(0)}/s, so one server core could feed ≈ ${(perServerCore / perHost).toFixed(1)} such hosts (an 8-core server ≈ ${((8 * perServerCore) / perHost).toFixed(0)}, before lock and WAL contention).`);
    fs.mkdirSync(path.join(path.dirname(SELF), 'results'), { recursive: true });
    fs.writeFileSync(path.join(path.dirname(SELF), 'results', 'postgres.json'), JSON.stringify({ n, concurrency, results, at: new Date().toISOString() }, null, 2));
  } finally {
    server.destroy();
  }
}

async function measure(server, workers, n, concurrency) {
  const url = await createDatabase(server.adminUrl);
  const { createEngine } = await import(pathToFileURL(DIST).href);
  const producer = await createEngine({ database: url, cleanupIntervalMs: 0 });
  producer.task('noop', async () => null);
  for (let i = 0; i < n; i += 1_000) await producer.enqueueMany(Array.from({ length: Math.min(1_000, n - i) }, () => ({ type: 'noop', payload: {} })));
  await producer.stop();

  const children = Array.from({ length: workers }, () => spawn(process.execPath, [SELF, '--worker', url, String(concurrency)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env: { ...process.env, PROMISED_LOG_LEVEL: 'silent' } }));
  await Promise.all(children.map((child) => new Promise((resolve) => child.once('message', resolve))));
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const serverCpuBefore = serverCpuMs(server);
  const started = performance.now();
  for (const child of children) child.send('go');
  for (;;) {
    const { rows } = await client.query(`select count(*)::int as done from promises where status = 'completed'`);
    if (rows[0].done === n) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const seconds = (performance.now() - started) / 1000;
  const serverCpu = serverCpuMs(server) - serverCpuBefore;
  const workerCpu = await Promise.all(
    children.map((child) => new Promise((resolve) => {
      child.once('message', (message) => resolve(message.cpuMs));
      child.send('stop');
    })),
  );
  const { rows } = await client.query(`select count(*)::int as bad from promises where status <> 'completed' or attempts <> 1`);
  await client.end();
  if (rows[0].bad !== 0) throw new Error(`${rows[0].bad} promises not completed exactly once`);
  const result = { perSecond: n / seconds, seconds, serverCpuMs: serverCpu, workerCpuMs: workerCpu.reduce((a, b) => a + b, 0) };
  console.log(`  ${workers} worker(s): ${result.perSecond.toFixed(0)}/s (${seconds.toFixed(2)} s)`);
  return result;
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
  return url.toString();
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
  asPostgres([path.join(bin, 'pg_ctl'), '-D', data, '-l', path.join(dir, 'log'), '-o', `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=on -c max_connections=200`, '-w', 'start']);
  const pid = Number(fs.readFileSync(path.join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
  const version = asPostgres([path.join(bin, 'postgres'), '--version']).match(/\d+\.\d+/)[0];
  return {
    adminUrl: `postgres://postgres@127.0.0.1:${port}/postgres`,
    pid,
    version,
    destroy() {
      try {
        asPostgres([path.join(bin, 'pg_ctl'), '-D', data, '-m', 'fast', '-w', 'stop']);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
