// The dashboard's promise list over 1,000,000 promises: fills an SQLite file (the migrated schema,
// raw multi-row inserts in one transaction), then times page requests through the dashboard's
// HTTP handler: the first page, filtered pages, a search and a deep page reached by cursor.
// Over the built output (`dist/`).
//
//   npm run build && node_modules/.bin/node bench/dashboard-list.js
//   node bench/dashboard-list.js --rows 200000 --keep ./list.db   # smaller, and keep the file
//
// Each figure is the median (and the worst) of REPEATS requests after one warm-up request.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';

const DIST = process.env.PROMISED_DIST ? path.resolve(process.env.PROMISED_DIST) : path.join(import.meta.dirname, '..', 'dist', 'index.js');
const { values } = parseArgs({ options: { rows: { type: 'string', default: '1000000' }, keep: { type: 'string' } } });
const ROWS = Number(values.rows);
const REPEATS = 15;
const PER_INSERT = 500;
const TYPES = Array.from({ length: 20 }, (_, i) => `task-${i}`);
// Mostly finished work, as a database that has run for a while looks; failures are rare.
const STATUSES = [
  ['completed', 0.93],
  ['failed', 0.002],
  ['pending', 0.04],
  ['waiting', 0.02],
  ['in_progress', 0.008],
];

const { createEngine, startDashboard } = await import(pathToFileURL(DIST).href);
const file = values.keep ?? path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'promised-list-')), 'list.db');

if (!fs.existsSync(file) || new Database(file).prepare("select count(*) as n from sqlite_master where name = 'promises'").get().n === 0) {
  // The engine migrates the file; the rows are written raw, as fast as SQLite takes them.
  const engine = await createEngine({ database: file });
  await engine.stop();
  const started = performance.now();
  fill(file, ROWS);
  console.log(`filled ${ROWS.toLocaleString('en')} promises in ${((performance.now() - started) / 1000).toFixed(1)} s (${(fs.statSync(file).size / 1e6).toFixed(0)} MB)`);
}

const engine = await createEngine({ database: file, cleanupIntervalMs: 0 });
const dashboard = await startDashboard(engine, { port: 0, database: file, pollIntervalMs: 60_000 });
try {
  const first = await timed('first page (50)', 'promises?limit=50');
  const deepCursor = await walk(first.body.next, 40);
  const rows = [
    first,
    await timed('status=failed (rare: 0.2 %)', 'promises?status=failed&limit=50'),
    await timed('status=completed', 'promises?status=completed&limit=50'),
    await timed('type=task-7', 'promises?type=task-7&limit=50'),
    await timed('status=pending&type=task-3', 'promises?status=pending&type=task-3&limit=50'),
    await timed('error code = TIMEOUT', 'promises?error=TIMEOUT&limit=50'),
    await timed('error code matching none (reads its whole window)', 'promises?error=NONE&limit=50'),
    await timed(`search "order-${ROWS - 4242}" (first window)`, `promises?q=order-${ROWS - 4242}&limit=50`),
    await timed('search, deep window (cursor #400000)', 'promises?q=order-4242&limit=50&before=400000'),
    await timed(`deep page (cursor after ${40 * 50} rows)`, `promises?limit=50&before=${deepCursor}`),
    await timed('deepest page (cursor #100)', 'promises?limit=50&before=100'),
    await timed('stats', 'stats'),
  ];
  console.log(`\n${ROWS.toLocaleString('en')} promises, ${REPEATS} requests each (median / worst), through the HTTP handler:\n`);
  console.log('| request | rows | median ms | worst ms |\n|---|---:|---:|---:|');
  for (const row of rows) console.log(`| ${row.name} | ${row.count} | ${row.median.toFixed(1)} | ${row.worst.toFixed(1)} |`);
} finally {
  await dashboard.close();
  await engine.stop();
  if (!values.keep) fs.rmSync(path.dirname(file), { recursive: true, force: true });
}

/** Times one API path; the body of the last answer is kept for cursors. */
async function timed(name, apiPath) {
  const url = `${dashboard.url}api/${apiPath}`;
  let body;
  await get(url);
  const times = [];
  for (let i = 0; i < REPEATS; i++) {
    const started = performance.now();
    body = await get(url);
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  const count = Array.isArray(body.promises) ? body.promises.length : '';
  return { name, body, count, median: times[Math.floor(times.length / 2)], worst: times.at(-1) };
}

/** Follows `next` cursors `pages` times (as the page's Older button does); the cursor reached. */
async function walk(cursor, pages) {
  for (let i = 0; i < pages && cursor; i++) cursor = (await get(`${dashboard.url}api/promises?limit=50&before=${cursor}`)).next;
  return cursor;
}

async function get(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: ${response.status} ${await response.text()}`);
  return response.json();
}

/** Writes `count` promises in one transaction, PER_INSERT rows per prepared statement. */
function fill(target, count) {
  const db = new Database(target);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = OFF');
  const columns = ['type', 'status', 'priority', 'payload', 'result', 'error_code', 'error_message', 'attempts', 'max_attempts', 'run_at', 'snapshot', 'created_at', 'updated_at', 'started_at', 'completed_at'];
  const row = `(${columns.map(() => '?').join(',')})`;
  const insert = db.prepare(`insert into promises (${columns.join(',')}) values ${Array(PER_INSERT).fill(row).join(',')}`);
  const t0 = Date.UTC(2026, 0, 1);
  let seed = 42;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const statusAt = (r) => {
    let sum = 0;
    for (const [status, share] of STATUSES) if (r < (sum += share)) return status;
    return 'completed';
  };
  db.transaction(() => {
    for (let start = 0; start < count; start += PER_INSERT) {
      const args = [];
      for (let i = start; i < start + PER_INSERT; i++) {
        const status = i < count ? statusAt(random()) : 'completed';
        const created = t0 + i * 100;
        const started = status === 'pending' || status === 'waiting' ? null : created + 50;
        const finished = status === 'completed' || status === 'failed' ? created + 50 + Math.floor(random() * 5_000) : null;
        const failed = status === 'failed';
        args.push(
          TYPES[i % TYPES.length], status, 0, JSON.stringify({ order: `order-${i}`, customer: `c-${i % 977}` }),
          status === 'completed' ? '{"ok":true}' : null,
          failed ? (i % 3 === 0 ? 'TIMEOUT' : 'HANDLER_ERROR') : null, failed ? `upstream answered 503 for order-${i}` : null,
          status === 'pending' || status === 'waiting' ? 0 : 1, 3, created, '{}', created, finished ?? created, started, finished,
        );
      }
      if (start + PER_INSERT > count) {
        // The last statement's surplus rows: written, then removed, so the count is exact.
        insert.run(args);
        db.prepare('delete from promises where id > ?').run(count);
      } else insert.run(args);
    }
  })();
  db.close();
}
