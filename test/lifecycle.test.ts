import fs from 'node:fs';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createEngine, PromisedError, type Engine, type EngineOptions, type PromiseRecord } from '../src/index.js';
import { latestDueAtOrBefore, nextDueAfter, parseCron } from '../src/engine/periodic-schedules.js';
import { engineBackends } from './helpers/backends.js';
import { kill, spawnFixture } from './helpers/child.js';
import { dumpDb } from './helpers/db-dump.js';
import { tempDir } from './helpers/temp-db.js';
import { deferred, until } from './helpers/wait.js';

const engines: Engine[] = [];
const children: Array<{ child: import('node:child_process').ChildProcess }> = [];
afterEach(async () => {
  vi.useRealTimers();
  for (const engine of engines.splice(0)) await engine.stop();
  for (const { child } of children.splice(0)) kill(child, 'SIGKILL');
});

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const isPostgres = (database: string) => database.startsWith('postgres://') || database.startsWith('postgresql://');

/** A clock the test moves by hand. */
function manualClock(start: string | number) {
  let now = typeof start === 'string' ? Date.parse(start) : start;
  return { now: () => now, set: (at: string | number) => (now = typeof at === 'string' ? Date.parse(at) : at), advance: (ms: number) => (now += ms) };
}

async function open(database: string, options: EngineOptions = {}) {
  const engine = await createEngine({ database, changeCheckIntervalMs: 0, cleanupIntervalMs: 0, stopTimeoutMs: 2_000, ...options });
  engines.push(engine);
  return engine;
}

async function stopAll() {
  for (const engine of engines.splice(0)) await engine.stop();
}

/** Runs `work` on a plain connection to the database (SQLite file or PostgreSQL URL), outside any engine. */
async function withPg<T>(url: string, work: (client: import('pg').Client) => Promise<T>): Promise<T> {
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** Every row of every table, to prove a refused call changed nothing: dumpDb for SQLite, the same idea for PostgreSQL. */
async function dump(database: string): Promise<unknown> {
  if (!isPostgres(database)) return dumpDb(database);
  return withPg(database, async (client) => {
    const tables = (await client.query<{ name: string }>(`select table_name as name from information_schema.tables where table_schema = current_schema() order by table_name`)).rows;
    const out: Record<string, string[]> = {};
    for (const { name } of tables) out[name] = (await client.query<{ row: string }>(`select row_to_json(t)::text as row from "${name}" t`)).rows.map((r) => r.row).sort();
    return out;
  });
}

/** Rows of one table, as objects (order unspecified). */
async function rowsOf(database: string, table: string): Promise<unknown[]> {
  const all = (await dump(database)) as Record<string, unknown[]>;
  return (all[table] ?? []).map((row) => (typeof row === 'string' ? JSON.parse(row) : row));
}

/**
 * Counts the progress writes the engine makes: a trigger logs every update of
 * promises.progress_current (only the throttled progress write sets it). Returns a reader.
 */
async function countProgressWrites(database: string): Promise<() => Promise<number[]>> {
  if (isPostgres(database)) {
    await withPg(database, async (client) => {
      await client.query(`create table test_progress_writes (seq serial primary key, current double precision)`);
      await client.query(`create function test_progress_written() returns trigger language plpgsql as $$ begin insert into test_progress_writes (current) values (new.progress_current); return null; end $$`);
      await client.query(`create trigger test_progress_writes after update of progress_current on promises for each row execute function test_progress_written()`);
    });
    return () => withPg(database, async (client) => (await client.query<{ current: number }>(`select current from test_progress_writes order by seq`)).rows.map((r) => r.current));
  }
  const db = new BetterSqlite3(database);
  db.exec(`create table test_progress_writes (seq integer primary key, current real);
           create trigger test_progress_writes after update of progress_current on promises begin insert into test_progress_writes (current) values (new.progress_current); end;`);
  db.close();
  return async () => {
    const reader = new BetterSqlite3(database, { readonly: true });
    try {
      return reader.prepare(`select current from test_progress_writes order by seq`).pluck().all() as number[];
    } finally {
      reader.close();
    }
  };
}

describe('cron parsing', () => {
  it('reads cron in its time zone across the spring DST gap and the autumn repeat', () => {
    const cron = parseCron('nightly', '30 2 * * *', 'Europe/Berlin');
    // 2026-03-29 02:00 CET jumps to 03:00 CEST: 02:30 does not exist and fires at 03:00 CEST.
    expect(new Date(nextDueAfter(cron, Date.parse('2026-03-28T12:00:00Z'))!).toISOString()).toBe('2026-03-29T01:00:00.000Z');
    expect(new Date(nextDueAfter(cron, Date.parse('2026-03-29T01:00:00Z'))!).toISOString()).toBe('2026-03-30T00:30:00.000Z');
    // 2026-10-25 03:00 CEST falls back to 02:00 CET: 02:30 happens twice and fires once, the first time.
    const autumn = [nextDueAfter(cron, Date.parse('2026-10-24T12:00:00Z'))!];
    autumn.push(nextDueAfter(cron, autumn[0]!)!);
    expect(autumn.map((t) => new Date(t).toISOString())).toEqual(['2026-10-25T00:30:00.000Z', '2026-10-26T01:30:00.000Z']);
    // Six fields: seconds first.
    const everyTen = parseCron('fast', '*/10 * * * * *', undefined);
    expect(new Date(nextDueAfter(everyTen, Date.parse('2026-01-01T00:00:05Z'))!).toISOString()).toBe('2026-01-01T00:00:10.000Z');
    expect(new Date(latestDueAtOrBefore(everyTen, Date.parse('2026-01-01T00:00:10Z'))!).toISOString()).toBe('2026-01-01T00:00:10.000Z');
  });
});

describe.each(engineBackends)('lifecycle on $name', (backend) => {
  describe.skipIf(backend.skip !== false)(`(${backend.name})`, () => {
    const fresh = () => backend.fresh();

    describe('periodic schedules', () => {
      it('creates the run due at a DST change at the right instant', async () => {
        // Moments before the spring gap when start() begins; the clock runs at real speed from there.
        const base = Date.parse('2026-03-29T00:59:59.000Z');
        let realStart = Date.now();
        const engine = await open(await fresh(), { clock: { now: () => base + (Date.now() - realStart) } });
        const ran: string[] = [];
        engine.periodic('nightly', '30 2 * * *', (ctx) => ran.push(ctx.scheduledAt.toISOString()), { timezone: 'Europe/Berlin' });
        realStart = Date.now();
        await engine.start();
        expect(Date.now() - realStart).toBeLessThan(1_000); // else the schedule began after its due time
        await until(() => ran.length === 1, 5_000, 'the 02:30 run');
        expect(ran).toEqual(['2026-03-29T01:00:00.000Z']);
      });

      it('a timer that fires after later due times passed (a stalled process) applies the catch-up policy', async () => {
        for (const catchUp of ['once', 'skip'] as const) {
          const clock = manualClock('2026-01-05T06:00:00.000Z');
          const engine = await open(await fresh(), { clock });
          engine.periodic('tick', '* * * * * *', () => 'ran', { catchUp });
          await engine.start();
          // The 06:00:01 timer is armed for one real second; by the time it fires, the clock says
          // 06:00:05.5: four more due times went by while the process was stalled.
          clock.set('2026-01-05T06:00:05.500Z');
          await sleep(1_300);
          const due = async () => (await engine.list({ type: 'periodic:tick' })).map((run) => (run.payload as { scheduledAt: string }).scheduledAt).sort();
          expect(await due()).toEqual(catchUp === 'once' ? ['2026-01-05T06:00:05.000Z'] : []);
          // And the schedule carries on from there: the next run is 06:00:06, once.
          clock.set('2026-01-05T06:00:06.000Z');
          await until(async () => (await due()).includes('2026-01-05T06:00:06.000Z'), 5_000, 'the 06:00:06 run');
          expect(await due()).toEqual(catchUp === 'once' ? ['2026-01-05T06:00:05.000Z', '2026-01-05T06:00:06.000Z'] : ['2026-01-05T06:00:06.000Z']);
          await stopAll();
        }
      });

      it('runs a run missed while stopped once on start, or skips it', async () => {
        for (const catchUp of ['once', 'skip'] as const) {
          const database = await fresh();
          const clock = manualClock('2026-01-05T06:00:00Z');
          const first = await open(database, { clock });
          first.periodic('morning', '0 7 * * *', () => 'ran', { catchUp });
          await first.start();
          await stopAll();
          // Down for three days: three 07:00 runs were missed.
          clock.set('2026-01-08T09:00:00Z');
          const second = await open(database, { clock });
          second.periodic('morning', '0 7 * * *', () => 'ran', { catchUp });
          await second.start();
          const runs = await second.list({ type: 'periodic:morning' });
          if (catchUp === 'once') {
            expect(runs).toHaveLength(1);
            expect(runs[0]!.payload).toMatchObject({ scheduledAt: '2026-01-08T07:00:00.000Z' });
          } else {
            expect(runs).toHaveLength(0);
          }
          await stopAll();
        }
      });

      // Two child processes (as the issue asks: separate engines, separate connections) on one database.
      it('two processes on one database create every due run exactly once, with no gaps', async () => {
        const database = await fresh();
        const log = path.join(tempDir(), 'ticks.log');
        fs.writeFileSync(log, '');
        // The schema first, so both start from the same database.
        await (await open(database)).stop();
        engines.pop();
        // One controllable clock for both processes: real time moved to a known epoch, the same offset in each.
        const epoch = Date.parse('2030-01-01T00:00:00.000Z');
        const offset = epoch - Date.now();
        const workers = [0, 1].map(() => spawnFixture('lifecycle-worker.ts', ['cron', database, log, String(offset)]));
        children.push(...workers);
        await Promise.all(workers.map((w) => w.waitForLine('started')));
        // Both up: let several due times pass, each one raced by both timers.
        await sleep(4_500);
        for (const w of workers) kill(w.child, 'SIGTERM');
        expect(await Promise.all(workers.map((w) => w.exited))).toEqual([0, 0]);

        const lines = fs.readFileSync(log, 'utf8').trim().split('\n').map((line) => line.split(' ') as [string, string, string, string?]);
        const pids = workers.map((w) => String(w.child.pid));
        const at = (kind: string) => lines.filter(([k]) => k === kind);
        const reader = await open(database);
        const runs = await reader.list({ type: 'periodic:tick', limit: 10_000 });
        const dueOf = (run: PromiseRecord) => Date.parse((run.payload as { scheduledAt: string }).scheduledAt);
        const due = runs.map(dueOf).sort((a, b) => a - b);

        // The controlled clock was the one used, and every run is a whole second.
        expect(due.length).toBeGreaterThanOrEqual(4);
        expect(due[0]!).toBeGreaterThan(epoch);
        expect(due[0]! - epoch).toBeLessThan(60_000);
        expect(due.every((t) => t % 1_000 === 0)).toBe(true);
        // No duplicates, no gaps: the runs are consecutive seconds, each due time once.
        expect(new Set(due).size).toBe(due.length);
        expect(due.slice(1).map((t, i) => t - due[i]!)).toEqual(due.slice(1).map(() => 1_000));
        // Every due time while both processes were up was created (and the window held several).
        const bothUpFrom = Math.max(...at('up').map(([, clock]) => Number(clock)));
        const bothUpUntil = Math.min(...at('down').map(([, clock]) => Number(clock)));
        expect(at('up').map(([, , pid]) => pid).sort()).toEqual([...pids].sort());
        const contested: number[] = [];
        for (let t = Math.ceil((bothUpFrom + 1) / 1_000) * 1_000; t < bothUpUntil - 100; t += 1_000) contested.push(t);
        expect(contested.length).toBeGreaterThanOrEqual(3);
        for (const t of contested) expect(due).toContain(t);
        // Both competed for each of those due times: both timers fired, one transaction created the
        // run and the other found it created.
        const fired = lines.filter(([kind]) => kind === 'fired');
        for (const t of contested) {
          const iso = new Date(t).toISOString();
          const racers = fired.filter(([, due]) => due === iso).map(([, , outcome, pid]) => `${pid} ${outcome}`).sort();
          expect(racers.map((r) => r.split(' ')[0]).sort(), `who fired for ${iso}`).toEqual([...pids].sort());
          expect(racers.map((r) => r.split(' ')[1]).sort(), `the race for ${iso}`).toEqual(['created', 'lost']);
        }
        // Each run was created by exactly one process's transaction (none refused as a duplicate).
        const created = at('created');
        expect(created.map(([, id]) => id).sort()).toEqual(runs.map((r) => r.id).sort());
        expect(at('error')).toEqual([]);
        // Every run that ran, ran once, whichever process claimed it.
        const ran = at('ran').map(([, iso]) => iso);
        expect(new Set(ran).size).toBe(ran.length);
        expect(ran.sort()).toEqual(runs.filter((r) => r.status === 'completed').map((r) => new Date(dueOf(r)).toISOString()).sort());
      });

      it('refuses an invalid cron expression or time zone, writing nothing', async () => {
        const database = await fresh();
        const engine = await open(database);
        const before = await dump(database);
        expect(() => engine.periodic('bad', '61 * * * *', () => 1)).toThrow(expect.objectContaining({ code: 'INVALID_CRON' }));
        expect(() => engine.periodic('bad', '* * *', () => 1)).toThrow(expect.objectContaining({ code: 'INVALID_CRON' }));
        expect(() => engine.periodic('bad', '0 7 * * *', () => 1, { timezone: 'Mars/Olympus' })).toThrow(expect.objectContaining({ code: 'INVALID_TIMEZONE' }));
        expect(engine.taskTypes).toEqual([]);
        expect(await dump(database)).toEqual(before);
        // Nor does a later start remember the refused schedules.
        await engine.start();
        await stopAll();
        expect(await rowsOf(database, 'schedules')).toEqual([]);
        expect(await rowsOf(database, 'promises')).toEqual([]);
      });
    });

    describe('results with expiry and cleanup', () => {
      it('removes expired finished promises and their edges in bounded batches', async () => {
        const database = await fresh();
        const clock = manualClock('2026-01-01T00:00:00Z');
        const engine = await open(database, { clock, immediate: true, resultTtl: 60_000 });
        engine.task('t', async () => 'r');
        engine.task('keep', async () => 'k', { resultTtl: 3_600_000 });
        const ids = await engine.enqueueGraph({ a: { type: 't' }, b: { type: 't', dependsOn: ['a'] }, c: { type: 't' }, d: { type: 't' }, e: { type: 't' } });
        const kept = await engine.enqueue('keep', {});
        await engine.enqueue('t', {}, { delay: 10 });
        clock.advance(59_000);
        expect(await engine.cleanup()).toEqual({ removed: 0 });
        clock.advance(2_000);
        const progress: number[] = [];
        expect(await engine.cleanup({ batchSize: 2, onProgress: (removed) => progress.push(removed) })).toEqual({ removed: 6 });
        expect(progress).toEqual([2, 4, 6, 6]);
        expect(await engine.get(ids.a!)).toBeUndefined();
        expect(await engine.get(kept)).toMatchObject({ result: 'k' });
        expect(await rowsOf(database, 'promise_dependencies')).toEqual([]);
      });

      it('a started engine cleans up by itself every cleanupIntervalMs (default one hour); resultTtl defaults to 7 days', async () => {
        const clock = manualClock('2026-01-01T00:00:00Z');
        const start = clock.now();
        // Only the interval timers are faked: the cleanup timer (and the heartbeat) move when the test says.
        vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
        const engine = await open(await fresh(), { clock, cleanupIntervalMs: undefined });
        engine.task('default-ttl', async () => 'd');
        engine.task('short-ttl', async () => 's', { resultTtl: 1_000 });
        await engine.start();
        const long = await engine.enqueue('default-ttl', {});
        const short = await engine.enqueue('short-ttl', {});
        await engine.result(long, { timeout: 5_000 });
        await engine.result(short, { timeout: 5_000 });

        // 7 days less 1 ms after both finished: only the short one has expired.
        clock.set(start + 7 * DAY_MS - 1);
        vi.advanceTimersByTime(HOUR_MS - 1);
        await sleep(100);
        expect(await engine.get(short)).toBeDefined(); // no cleanup before the hour
        vi.advanceTimersByTime(1);
        await until(async () => (await engine.get(short)) === undefined, 5_000, 'the first automatic cleanup');
        // The same sweep (one transaction: far fewer rows than a batch) kept the 7-day one.
        expect(await engine.get(long)).toMatchObject({ status: 'completed', result: 'd' });

        clock.set(start + 7 * DAY_MS);
        vi.advanceTimersByTime(HOUR_MS);
        await until(async () => (await engine.get(long)) === undefined, 5_000, 'the second automatic cleanup');
        await stopAll();
      });

      it('cleanup({ olderThan }) removes promises finished longer ago, whatever their expiry', async () => {
        const clock = manualClock('2026-01-01T00:00:00Z');
        const engine = await open(await fresh(), { clock, immediate: true });
        engine.task('t', async () => 1);
        const old = await engine.enqueue('t', {});
        clock.advance(10_000);
        const recent = await engine.enqueue('t', {});
        expect(await engine.cleanup({ olderThan: 5_000 })).toEqual({ removed: 1 });
        expect(await engine.get(old)).toBeUndefined();
        expect(await engine.get(recent)).toBeDefined();
      });

      it('storeResult: false keeps no result', async () => {
        const engine = await open(await fresh(), { immediate: true });
        engine.task('secret', async () => ({ token: 'hunter2' }), { storeResult: false });
        const id = await engine.enqueue('secret', {});
        expect(await engine.get(id)).toMatchObject({ status: 'completed', result: null });
      });

      it('refuses a negative resultTtl, writing nothing', async () => {
        const database = await fresh();
        const empty = await dump(database);
        await expect(createEngine({ database, resultTtl: -1 })).rejects.toMatchObject({ code: 'INVALID_OPTION' });
        expect(await dump(database)).toEqual(empty);
        const engine = await open(database);
        const before = await dump(database);
        expect(() => engine.task('t', async () => 1, { resultTtl: -5 })).toThrow(expect.objectContaining({ code: 'INVALID_OPTION' }));
        expect(engine.taskTypes).toEqual([]);
        expect(await dump(database)).toEqual(before);
      });
    });

    describe('dead letters', () => {
      it('records a promise that failed for good, and retry() takes it back with a history line', async () => {
        const engine = await open(await fresh(), { immediate: true });
        let healthy = false;
        engine.task('fragile', async () => {
          if (!healthy) throw new PromisedError('UPSTREAM_DOWN', 'upstream is down');
          return 'fine';
        }, { retries: 1, retryDelay: 1 });
        engine.task('child', async () => 'child');
        const ids = await engine.enqueueGraph({ parent: { type: 'fragile', payload: { n: 1 } }, child: { type: 'child', dependsOn: ['parent'] } });
        const letters = await engine.deadLetters.list();
        expect(letters.map((l) => [l.promiseId, l.error.code]).sort()).toEqual([
          [ids.child, 'DEPENDENCY_FAILED'],
          [ids.parent, 'UPSTREAM_DOWN'],
        ].sort());
        expect(letters.find((l) => l.promiseId === ids.parent)).toMatchObject({ type: 'fragile', payload: { n: 1 }, attempts: 2 });
        expect((await engine.stats()).deadLetters).toBe(2);

        // A dependent cannot be retried while its dependency is still failed.
        await expect(engine.retry(ids.child!)).rejects.toMatchObject({ code: 'INVALID_TRANSITION' });
        healthy = true;
        await engine.retry(ids.parent!);
        expect(await engine.get(ids.parent!)).toMatchObject({ status: 'completed', attempts: 1, result: 'fine' });
        // Retrying the parent brought back the child that failed only because of it.
        expect(await engine.get(ids.child!)).toMatchObject({ status: 'completed', result: 'child', error: null });
        expect(await engine.deadLetters.list()).toEqual([]);
        const history = await engine.history(ids.parent!);
        expect(history.map((h) => h.event)).toEqual(['ENQUEUED', 'CLAIM', 'FAIL', 'FAIL', 'RETRY', 'SUCCEED']);
        expect(history[2]).toMatchObject({ from: 'in_progress', to: 'pending', attempt: 1, error: { code: 'UPSTREAM_DOWN' } });
        expect((await engine.history(ids.child!)).map((h) => h.event)).toEqual(['ENQUEUED', 'DEPENDENCY_FAILED', 'RETRY', 'CLAIM', 'SUCCEED']);

        healthy = false;
        const lonely = await engine.enqueue('fragile', {});
        expect((await engine.deadLetters.list()).map((l) => l.promiseId)).toEqual([lonely]);
        expect(await engine.deadLetters.clear()).toEqual({ removed: 1 });
        expect(await engine.deadLetters.list()).toEqual([]);
      });
    });

    describe('history', () => {
      it('keeps causal order when every transition lands in the same millisecond', async () => {
        // A frozen clock: all timestamps are equal, so only the order of writing can tell the story.
        const engine = await open(await fresh(), { immediate: true, clock: manualClock('2026-02-01T00:00:00Z') });
        let healthy = false;
        engine.task('flaky', async () => {
          if (!healthy) throw new PromisedError('UPSTREAM_DOWN', 'upstream is down');
          return 'fine';
        });
        engine.task('after', async () => 'after');
        const ids = await engine.enqueueGraph({ parent: { type: 'flaky' }, child: { type: 'after', dependsOn: ['parent'] } });
        healthy = true;
        await engine.retry(ids.parent!);
        expect((await engine.history(ids.parent!)).map((h) => h.event)).toEqual(['ENQUEUED', 'CLAIM', 'FAIL', 'RETRY', 'SUCCEED']);
        expect((await engine.history(ids.child!)).map((h) => h.event)).toEqual(['ENQUEUED', 'DEPENDENCY_FAILED', 'RETRY', 'CLAIM', 'SUCCEED']);
      });
    });

    describe('completion tasks', () => {
      it('enqueues onComplete and onFail follow-ups in the finishing transaction', async () => {
        const engine = await open(await fresh(), { immediate: true });
        const notes: unknown[] = [];
        engine.task('notify', async (payload) => void notes.push(payload));
        engine.task('alert', async () => {
          throw new Error('the pager is broken too');
        });
        engine.task('ship', async (payload: { fail?: boolean }) => {
          if (payload.fail) throw new Error('ship sank');
          return { shipped: true };
        }, { onComplete: 'notify', onFail: 'alert' });
        const ok = await engine.enqueue('ship', {});
        const bad = await engine.enqueue('ship', { fail: true });
        expect(notes).toEqual([{ promise: { id: ok, type: 'ship', status: 'completed', result: { shipped: true } } }]);
        // A failing follow-up never changes the promise it follows.
        expect(await engine.get(ok)).toMatchObject({ status: 'completed' });
        expect(await engine.get(bad)).toMatchObject({ status: 'failed', error: { message: 'ship sank' } });
        const alerts = await engine.list({ type: 'alert' });
        expect(alerts).toHaveLength(1);
        expect(alerts[0]).toMatchObject({ status: 'failed', payload: { promise: { id: bad, error: { message: 'ship sank' } } } });
      });

      it('refuses a follow-up naming an unknown task type, writing nothing', async () => {
        const database = await fresh();
        const engine = await open(database);
        engine.task('ship', async () => 1, { onComplete: 'nobody' });
        const before = await dump(database);
        await expect(engine.enqueue('ship', {})).rejects.toMatchObject({ code: 'UNKNOWN_TASK_TYPE' });
        await expect(engine.start()).rejects.toMatchObject({ code: 'UNKNOWN_TASK_TYPE' });
        expect(await dump(database)).toEqual(before);
      });

      it('a follow-up survives a SIGKILL landing after the completion commits and before the follow-up is claimed', async () => {
        const database = await fresh();
        const log = path.join(tempDir(), 'notify.log');
        fs.writeFileSync(log, '');
        // The child kills itself synchronously on main's SUCCEED transition, announced right after
        // main's commit: a follow-up enqueued by any later transaction would be lost here.
        const first = spawnFixture('lifecycle-worker.ts', ['follow-up', database, log, 'kill']);
        children.push(first);
        let guard: NodeJS.Timeout | undefined;
        await Promise.race([first.exited, new Promise((_, reject) => (guard = setTimeout(() => reject(new Error(`the child did not kill itself; stderr: ${first.stderr()}`)), 30_000)))]);
        clearTimeout(guard);
        expect(first.child.signalCode).toBe('SIGKILL');

        // What the kill left: main completed, and its follow-up committed with it, never started.
        const afterKill = await open(database);
        const [main] = await afterKill.list({ type: 'main' });
        expect(main).toMatchObject({ status: 'completed', result: { shipped: true } });
        expect(await afterKill.list({ type: 'notify' })).toMatchObject([{ status: 'pending', attempts: 0 }]);
        await stopAll();
        expect(fs.readFileSync(log, 'utf8')).toBe('');

        const second = spawnFixture('lifecycle-worker.ts', ['follow-up', database, log, 'resume']);
        children.push(second);
        await second.waitForLine('notified');
        kill(second.child, 'SIGTERM');
        expect(await second.exited).toBe(0);
        const reader = await open(database);
        expect(await reader.list({ type: 'main' })).toMatchObject([{ id: main!.id, status: 'completed' }]);
        // Exactly one follow-up, run once (its first attempt, in the restarted process).
        const notes = await reader.list({ type: 'notify' });
        expect(notes).toHaveLength(1);
        expect(notes[0]).toMatchObject({ status: 'completed', attempts: 1, payload: { promise: { id: main!.id, type: 'main', status: 'completed', result: { shipped: true } } } });
        expect(fs.readFileSync(log, 'utf8').trim().split('\n')).toEqual([`notify resume ${main!.id} {"shipped":true}`]);
      });
    });

    describe('progress and events', () => {
      it('emits every progress report at once and writes it at most every 250 ms, coalescing a burst', async () => {
        const database = await fresh();
        const engine = await open(database);
        const writes = await countProgressWrites(database);
        const events: number[] = [];
        engine.on('progress', (p) => events.push(p.current));
        const emittedAtOnce: boolean[] = [];
        const burstDone = deferred();
        const paced = deferred();
        let pacedMs = 0;
        engine.task('work', async (_payload, ctx) => {
          for (let i = 1; i <= 5; i++) {
            ctx.progress(i, 50);
            emittedAtOnce.push(events.at(-1) === i);
          }
          burstDone.resolve();
          await paced.promise;
          const begun = Date.now();
          for (let i = 6; i <= 50; i++) {
            ctx.progress(i, 50);
            emittedAtOnce.push(events.at(-1) === i);
            await sleep(10);
          }
          pacedMs = Date.now() - begun;
          return 'done';
        });
        await engine.start();
        const id = await engine.enqueue('work', {});
        await burstDone.promise;
        // Five reports in one turn: one write, of the last.
        await until(async () => (await engine.get(id))!.progress?.current === 5, 5_000, 'the burst written');
        expect(await writes()).toEqual([5]);
        expect((await engine.get(id))!.progress).toEqual({ current: 5, total: 50 });

        paced.resolve();
        expect(await engine.result(id, { timeout: 20_000 })).toBe('done');
        expect(events).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
        expect(emittedAtOnce.every(Boolean)).toBe(true);
        // 45 reports ~10 ms apart: written at most once per 250 ms (plus the one the first report
        // may trigger at once, and the last, written with the outcome).
        const pacedWrites = (await writes()).slice(1);
        expect(pacedWrites.length).toBeGreaterThanOrEqual(1);
        expect(pacedWrites.length).toBeLessThanOrEqual(Math.floor(pacedMs / 250) + 2);
        expect(pacedWrites.at(-1)).toBe(50);
        expect(pacedWrites.length).toBeLessThan(45 / 3);
        // Each write is the latest report at the time, so the values only grow.
        expect([...pacedWrites].sort((a, b) => a - b)).toEqual(pacedWrites);
      });

      it("emits 'completed', 'failed' and 'retrying' after the commit, with the committed record", async () => {
        const engine = await open(await fresh());
        const seen: Array<[string, PromiseRecord]> = [];
        for (const event of ['completed', 'failed', 'retrying'] as const) engine.on(event, (record) => seen.push([event, record]));
        engine.task('ok', async () => ({ fine: true }));
        engine.task('bad', async () => {
          throw new PromisedError('BROKEN', 'always broken');
        }, { retries: 1, retryDelay: 1 });
        await engine.start();
        const ok = await engine.enqueue('ok', {});
        const bad = await engine.enqueue('bad', {});
        await until(() => seen.filter(([event]) => event !== 'retrying').length === 2, 10_000, 'completed and failed events');
        await sleep(100); // nothing more comes
        const byEvent = (name: string) => seen.filter(([event]) => event === name).map(([, record]) => record);
        expect(byEvent('completed')).toEqual([expect.objectContaining({ id: ok, type: 'ok', status: 'completed', result: { fine: true }, attempts: 1 })]);
        expect(byEvent('retrying')).toEqual([expect.objectContaining({ id: bad, status: 'pending', attempts: 1, error: { code: 'BROKEN', message: 'always broken' } })]);
        expect(byEvent('failed')).toEqual([expect.objectContaining({ id: bad, type: 'bad', status: 'failed', attempts: 2, error: { code: 'BROKEN', message: 'always broken' } })]);
        // The records are what the database holds.
        expect(byEvent('completed')[0]).toEqual(await engine.get(ok));
        expect(byEvent('failed')[0]).toEqual(await engine.get(bad));
      });
    });

    describe('inbox', () => {
      const window = 60_000;

      async function inboxAt(database: string, clock: ReturnType<typeof manualClock>, seen: string[]) {
        const engine = await open(database, { clock });
        const inbox = engine.inbox('mail', (message: { subject: string }) => void seen.push(message.subject), { catchUpWindow: window });
        return { engine, inbox };
      }

      it('catches up on messages stored while down: inside and exactly at the window run, outside is recorded as skipped', async () => {
        const database = await fresh();
        const clock = manualClock('2026-02-01T12:00:00Z');
        const seen: string[] = [];
        const down = await inboxAt(database, clock, seen);
        const startAt = clock.now() + 10_000;
        const received = (age: number) => new Date(startAt - age);
        await down.inbox.receive({ subject: 'just inside' }, { id: 'm1', receivedAt: received(window - 1) });
        await down.inbox.receive({ subject: 'exactly at' }, { id: 'm2', receivedAt: received(window) });
        await down.inbox.receive({ subject: 'just outside' }, { id: 'm3', receivedAt: received(window + 1) });
        expect((await down.inbox.receive({ subject: 'again' }, { id: 'm1', receivedAt: received(0) })).outcome).toBe('duplicate');
        await stopAll();

        clock.set(startAt);
        const up = await inboxAt(database, clock, seen);
        const summary = await up.engine.start();
        expect(summary.skippedMessages).toBe(1);
        await until(async () => (await up.engine.stats()).pending === 0 && (await up.engine.stats()).in_progress === 0);
        expect(seen.sort()).toEqual(['exactly at', 'just inside']);
        const skipped = (await up.engine.list({ status: 'failed' }))[0]!;
        expect(skipped).toMatchObject({ error: { code: 'SKIPPED' }, payload: { id: 'm3', message: { subject: 'just outside' } } });
      });

      it('a message received while running is skipped at once when already too old', async () => {
        const clock = manualClock('2026-02-01T12:00:00Z');
        const seen: string[] = [];
        const { engine, inbox } = await inboxAt(await fresh(), clock, seen);
        await engine.start();
        expect((await inbox.receive({ subject: 'fresh' }, { id: 'a', receivedAt: clock.now() - window })).outcome).toBe('accepted');
        expect((await inbox.receive({ subject: 'stale' }, { id: 'b', receivedAt: clock.now() - window - 1 })).outcome).toBe('skipped');
        await until(() => seen.length === 1);
        expect(seen).toEqual(['fresh']);
      });

      it('refuses a message without an id, writing nothing', async () => {
        const database = await fresh();
        const { inbox } = await inboxAt(database, manualClock(Date.now()), []);
        const before = await dump(database);
        await expect(inbox.receive({ subject: 'x' }, { id: '' })).rejects.toMatchObject({ code: 'INVALID_MESSAGE' });
        await expect(inbox.receive({ subject: 'x' }, {} as { id: string })).rejects.toMatchObject({ code: 'INVALID_MESSAGE' });
        expect(await dump(database)).toEqual(before);
      });
    });

    describe('stats', () => {
      it('counts by status and type, and the oldest due wait', async () => {
        const clock = manualClock('2026-03-01T00:00:00Z');
        const engine = await open(await fresh(), { clock });
        engine.task('a', async () => 1);
        engine.task('b', async () => 1);
        await engine.enqueue('a', {});
        clock.advance(5_000);
        await engine.enqueue('b', {});
        const stats = await engine.stats();
        expect(stats).toMatchObject({ pending: 2, byType: { a: { pending: 1 }, b: { pending: 1 } }, oldestPendingAgeMs: 5_000, deadLetters: 0 });
        expect(stats.recent).toEqual({ completedLastMinute: 0, failedLastMinute: 0, perSecond: 0 });
      });

      it('counts what finished in the last minute as recent throughput', async () => {
        const clock = manualClock('2026-03-01T00:00:00Z');
        const start = clock.now();
        const engine = await open(await fresh(), { clock, immediate: true });
        engine.task('ok', async () => 1);
        engine.task('bad', async () => {
          throw new Error('no');
        });
        for (let i = 0; i < 3; i++) await engine.enqueue('ok', {});
        await engine.enqueue('bad', {});
        clock.set(start + 50_000);
        await engine.enqueue('ok', {});
        clock.set(start + 59_999);
        expect((await engine.stats()).recent).toEqual({ completedLastMinute: 4, failedLastMinute: 1, perSecond: 5 / 60 });
        // A minute after the first four finished, only the later one counts.
        clock.set(start + 60_001);
        expect((await engine.stats()).recent).toEqual({ completedLastMinute: 1, failedLastMinute: 0, perSecond: 1 / 60 });
        clock.set(start + 110_001);
        expect((await engine.stats()).recent).toEqual({ completedLastMinute: 0, failedLastMinute: 0, perSecond: 0 });
        expect(await engine.stats()).toMatchObject({ completed: 4, failed: 1 });
      });
    });
  });
});
