// listWorkflows({ awaiting }) over N running workflows (default 100,000): how long the index of
// what each running workflow waits for takes to answer, on SQLite or PostgreSQL.
//
//   npm run build && node bench/awaiting.js                       # SQLite, N = 100,000
//   node bench/awaiting.js --n 20000                             # a quicker look
//   node bench/awaiting.js --postgres                            # a throwaway server (initdb + pg_ctl)
//   node bench/awaiting.js --db postgres://user@host:5432/db     # an empty database of your own
//
// Seeding: three template workflows are started through the engine (one waiting for APPROVE,
// one for SIGN, one for RARE), so their rows and index entries are the engine's own; they are
// then copied in bulk with one INSERT … SELECT per template (starting 100,000 workflows one
// transaction each would take minutes and measure the start, not the read). Shares: 10 % wait
// for APPROVE, 10 workflows for RARE, the rest for SIGN. Each query runs --runs times (default
// 30) after one warm-up, through the public API (`engine.listWorkflows`), and is checked: the
// right count of the right workflows. Prints the median, p95 and max in ms per query.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setup } from 'xstate';
import { createEngine } from '../dist/index.js';

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const index = args.indexOf(`--${name}`);
  return index === -1 ? fallback : args[index + 1];
};
const N = Number(option('n', 100_000));
const RUNS = Number(option('runs', 30));
const RARE = 10;
const LIMIT = 100;

// One machine, three waiting states: the input says which.
const machine = setup({}).createMachine({
  id: 'expense',
  context: ({ input }) => ({ kind: input.kind }),
  initial: 'routing',
  states: {
    routing: {
      always: [
        { guard: ({ context }) => context.kind === 'approve', target: 'approval' },
        { guard: ({ context }) => context.kind === 'rare', target: 'audit' },
        { target: 'signing' },
      ],
    },
    approval: { on: { APPROVE: 'done', REJECT: 'done' } },
    signing: { on: { SIGN: 'done' } },
    audit: { on: { RARE: 'done' } },
    done: { type: 'final' },
  },
});

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'promised-bench-awaiting-'));
let server;
let database = option('db', path.join(dir, 'bench.db'));
if (args.includes('--postgres')) {
  server = await startPostgres(dir);
  database = server.url;
}
const backend = database.startsWith('postgres') ? 'PostgreSQL' : 'SQLite';

const engine = await createEngine({ database, changeCheckIntervalMs: 0, cleanupIntervalMs: 0 });
engine.workflow('expense', machine, { steps: {} });
engine.workflow('other', machine, { steps: {} });
await engine.start();
const raw = await rawConnection(database);

const seedStarted = performance.now();
const approveCount = Math.round(N * 0.1);
const counts = { approve: approveCount, rare: RARE, sign: N - approveCount - RARE };
const ranges = {};
for (const kind of ['sign', 'approve', 'rare']) {
  const template = Number(await engine.startWorkflow('expense', { kind }));
  ranges[kind] = await cloneWorkflow(raw, template, counts[kind] - 1);
  ranges[kind].template = template;
}
// A few of another name wait for APPROVE too: the name filter must leave them out.
for (let i = 0; i < 5; i++) await engine.startWorkflow('other', { kind: 'approve' });
await raw.analyze();
const seedSeconds = (performance.now() - seedStarted) / 1000;
const running = await raw.count(`select count(*) as n from workflows where status = 'running'`);

const queries = [
  { label: `awaiting APPROVE, limit ${LIMIT} (${counts.approve + 5} match)`, filter: { awaiting: 'APPROVE', limit: LIMIT }, expect: LIMIT },
  { label: `awaiting APPROVE, name expense, limit ${LIMIT}`, filter: { awaiting: 'APPROVE', name: 'expense', limit: LIMIT }, expect: LIMIT },
  { label: `awaiting RARE (${RARE} match)`, filter: { awaiting: 'RARE', limit: LIMIT }, expect: RARE },
  { label: 'awaiting NOTHING (none match)', filter: { awaiting: 'NOTHING', limit: LIMIT }, expect: 0 },
];
const results = [];
let correct = running === N + 5;
for (const query of queries) {
  const found = await engine.listWorkflows(query.filter);
  const awaited = query.filter.awaiting === 'RARE' ? 'audit' : 'approval';
  correct &&= found.length === query.expect && found.every((w) => w.status === 'running' && w.value === awaited && (!query.filter.name || w.name === query.filter.name));
  const times = [];
  for (let run = 0; run < RUNS; run++) {
    const started = performance.now();
    await engine.listWorkflows(query.filter);
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  const at = (q) => Number(times[Math.min(times.length - 1, Math.floor(q * times.length))].toFixed(2));
  results.push({ query: query.label, medianMs: at(0.5), p95Ms: at(0.95), maxMs: Number(times.at(-1).toFixed(2)) });
}

await raw.close();
await engine.stop();
server?.destroy();
fs.rmSync(dir, { recursive: true, force: true });
console.log(JSON.stringify({ backend, runningWorkflows: running, seedSeconds: Number(seedSeconds.toFixed(1)), runs: RUNS, results, correct }, null, 1));
if (!correct) process.exit(1);

/** Copies workflow `template` `copies` times (its row and its index entries); returns the id range of the copies. */
async function cloneWorkflow(connection, template, copies) {
  const [row] = await connection.rows(`select * from workflows where id = ${template}`);
  // Every column but the id and the unique idempotency key.
  const columns = Object.keys(row).filter((column) => column !== 'id' && column !== 'key');
  const list = columns.map((column) => `"${column}"`).join(', ');
  const from = await connection.count('select max(id) as n from workflows');
  const numbers =
    connection.dialect === 'sqlite'
      ? `(with recursive n(i) as (select 1 union all select i + 1 from n where i < ${copies}) select i from n) as n`
      : `generate_series(1, ${copies}) as n(i)`;
  await connection.run(`insert into workflows (${list}) select ${columns.map((column) => `t."${column}"`).join(', ')} from ${numbers}, workflows t where t.id = ${template}`);
  const to = await connection.count('select max(id) as n from workflows');
  await connection.run(`insert into workflow_awaiting (event_type, workflow_id) select a.event_type, w.id from workflows w, workflow_awaiting a where a.workflow_id = ${template} and w.id > ${from} and w.id <= ${to}`);
  return { from: from + 1, to };
}

/** A connection of the bench's own, beside the engine's, for the bulk copy. */
async function rawConnection(url) {
  if (!url.startsWith('postgres')) {
    const { default: Database } = await import('better-sqlite3');
    const db = new Database(url);
    db.pragma('busy_timeout = 10000');
    return {
      dialect: 'sqlite',
      rows: async (sql) => db.prepare(sql).all(),
      count: async (sql) => Number(db.prepare(sql).get().n),
      run: async (sql) => void db.prepare(sql).run(),
      // Left as the engine leaves a file: it runs no ANALYZE.
      analyze: async () => undefined,
      close: async () => db.close(),
    };
  }
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  return {
    dialect: 'postgres',
    rows: async (sql) => (await client.query(sql)).rows,
    count: async (sql) => Number((await client.query(sql)).rows[0].n),
    run: async (sql) => void (await client.query(sql)),
    // Fresh statistics, as autovacuum keeps them on a server that has run for a while.
    analyze: async () => void (await client.query('analyze workflows; analyze workflow_awaiting')),
    close: () => client.end(),
  };
}

/** initdb + pg_ctl in a temp folder, on a free loopback port (run as the postgres user when root). */
async function startPostgres(base) {
  const bin = ['/usr/lib/postgresql/17/bin', '/usr/lib/postgresql/16/bin', '/usr/lib/postgresql/15/bin', '/usr/local/bin'].find((folder) => fs.existsSync(path.join(folder, 'pg_ctl')));
  if (!bin) throw new Error('--postgres: initdb and pg_ctl not found; pass --db postgres://… instead');
  const folder = path.join(base, 'pg');
  fs.mkdirSync(folder);
  fs.chmodSync(base, 0o755);
  const asRoot = process.getuid?.() === 0;
  if (asRoot) execFileSync('chown', ['postgres:postgres', folder]);
  const sh = (command) => {
    const result = asRoot ? spawnSync('su', ['postgres', '-s', '/bin/sh', '-c', command], { encoding: 'utf8' }) : spawnSync('/bin/sh', ['-c', command], { encoding: 'utf8' });
    if (result.status !== 0) throw new Error(`${command}: ${result.stderr || result.stdout}`);
  };
  const port = await new Promise((resolve) => {
    const probe = net.createServer().listen(0, '127.0.0.1', () => {
      const { port: free } = probe.address();
      probe.close(() => resolve(free));
    });
  });
  sh(`${bin}/initdb -D ${folder}/data -U postgres --auth=trust --no-instructions -E UTF8 --locale=C > /dev/null`);
  sh(`${bin}/pg_ctl -D ${folder}/data -l ${folder}/log -o "-p ${port} -k ${folder} -c listen_addresses=127.0.0.1" -w start > /dev/null`);
  return { url: `postgres://postgres@127.0.0.1:${port}/postgres`, destroy: () => sh(`${bin}/pg_ctl -D ${folder}/data -m fast -w stop > /dev/null`) };
}
