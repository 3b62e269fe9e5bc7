import fs from 'node:fs';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { createEngine, PromisedError, type Engine, type EngineOptions } from '../src/index.js';
import { latestDueAtOrBefore, nextDueAfter, parseCron } from '../src/engine/periodic-schedules.js';
import { kill, spawnFixture } from './helpers/child.js';
import { dumpDb } from './helpers/db-dump.js';
import { tempDbPath, tempDir } from './helpers/temp-db.js';
import { until } from './helpers/wait.js';

const engines: Engine[] = [];
const children: Array<{ child: import('node:child_process').ChildProcess }> = [];
afterEach(async () => {
  for (const engine of engines.splice(0)) await engine.stop();
  for (const { child } of children.splice(0)) kill(child, 'SIGKILL');
});

/** A clock the test moves by hand. */
function manualClock(start: string | number) {
  let now = typeof start === 'string' ? Date.parse(start) : start;
  return { now: () => now, set: (at: string | number) => (now = typeof at === 'string' ? Date.parse(at) : at), advance: (ms: number) => (now += ms) };
}

async function open(file: string, options: EngineOptions = {}) {
  const engine = await createEngine({ database: file, changeCheckIntervalMs: 0, cleanupIntervalMs: 0, ...options });
  engines.push(engine);
  return engine;
}

async function stopAll() {
  for (const engine of engines.splice(0)) await engine.stop();
}

describe('periodic schedules', () => {
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

  it('creates the run due at a DST change at the right instant', async () => {
    const file = tempDbPath();
    // Moments before the spring gap; the clock runs at real speed from there.
    const base = Date.parse('2026-03-29T00:59:59.500Z');
    const realStart = Date.now();
    const engine = await open(file, { clock: { now: () => base + (Date.now() - realStart) } });
    const ran: string[] = [];
    engine.periodic('nightly', '30 2 * * *', (ctx) => ran.push(ctx.scheduledAt.toISOString()), { timezone: 'Europe/Berlin' });
    await engine.start();
    await until(() => ran.length === 1, 5_000, 'the 02:30 run');
    expect(ran).toEqual(['2026-03-29T01:00:00.000Z']);
  });

  it('runs a run missed while stopped once on start, or skips it', async () => {
    for (const catchUp of ['once', 'skip'] as const) {
      const file = tempDbPath();
      const clock = manualClock('2026-01-05T06:00:00Z');
      const first = await open(file, { clock });
      first.periodic('morning', '0 7 * * *', () => 'ran', { catchUp });
      await first.start();
      await stopAll();
      // Down for three days: three 07:00 runs were missed.
      clock.set('2026-01-08T09:00:00Z');
      const second = await open(file, { clock });
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

  it('two processes on one file create each due run once', async () => {
    const file = tempDbPath();
    const log = path.join(tempDir(), 'ticks.log');
    fs.writeFileSync(log, '');
    // The schema first, so both start from the same database.
    await (await open(file)).stop();
    engines.pop();
    const workers = [0, 1].map(() => spawnFixture('lifecycle-worker.ts', ['cron', file, log]));
    children.push(...workers);
    await Promise.all(workers.map((w) => w.waitForLine('started')));
    const codes = await Promise.all(workers.map((w) => w.exited));
    expect(codes).toEqual([0, 0]);
    const raw = new BetterSqlite3(file, { readonly: true });
    const rows = raw.prepare(`select idempotency_key as key, status from promises where type = 'periodic:tick'`).all() as Array<{ key: string; status: string }>;
    raw.close();
    const ticks = fs.readFileSync(log, 'utf8').trim().split('\n').filter(Boolean).map((line) => line.split(' ')[0]!);
    expect(rows.length).toBeGreaterThanOrEqual(2);
    expect(new Set(rows.map((r) => r.key)).size).toBe(rows.length);
    // Every run created ran exactly once, whichever process created or claimed it.
    expect(new Set(ticks).size).toBe(ticks.length);
    const completed = rows.filter((r) => r.status === 'completed').length;
    expect(ticks.length).toBe(completed);
  });

  it('refuses an invalid cron expression or time zone', async () => {
    const engine = await open(tempDbPath());
    expect(() => engine.periodic('bad', '61 * * * *', () => 1)).toThrow(expect.objectContaining({ code: 'INVALID_CRON' }));
    expect(() => engine.periodic('bad', '* * *', () => 1)).toThrow(expect.objectContaining({ code: 'INVALID_CRON' }));
    expect(() => engine.periodic('bad', '0 7 * * *', () => 1, { timezone: 'Mars/Olympus' })).toThrow(expect.objectContaining({ code: 'INVALID_TIMEZONE' }));
    expect(engine.taskTypes).toEqual([]);
  });
});

describe('results with expiry and cleanup', () => {
  it('removes expired finished promises and their edges in bounded batches', async () => {
    const file = tempDbPath();
    const clock = manualClock('2026-01-01T00:00:00Z');
    const engine = await open(file, { clock, immediate: true, resultTtl: 60_000 });
    engine.task('t', async () => 'r');
    engine.task('keep', async () => 'k', { resultTtl: 3_600_000 });
    const ids = await engine.enqueueGraph({ a: { type: 't' }, b: { type: 't', dependsOn: ['a'] }, c: { type: 't' }, d: { type: 't' }, e: { type: 't' } });
    const kept = await engine.enqueue('keep', {});
    const waiting = await engine.enqueue('t', {}, { delay: 10 });
    void waiting;
    clock.advance(59_000);
    expect(await engine.cleanup()).toEqual({ removed: 0 });
    clock.advance(2_000);
    const progress: number[] = [];
    expect(await engine.cleanup({ batchSize: 2, onProgress: (removed) => progress.push(removed) })).toEqual({ removed: 6 });
    expect(progress).toEqual([2, 4, 6, 6]);
    expect(await engine.get(ids.a!)).toBeUndefined();
    expect(await engine.get(kept)).toMatchObject({ result: 'k' });
    const dump = dumpDb(file) as Record<string, unknown[]>;
    expect(dump.promise_dependencies).toEqual([]);
  });

  it('cleanup({ olderThan }) removes promises finished longer ago, whatever their expiry', async () => {
    const clock = manualClock('2026-01-01T00:00:00Z');
    const engine = await open(tempDbPath(), { clock, immediate: true });
    engine.task('t', async () => 1);
    const old = await engine.enqueue('t', {});
    clock.advance(10_000);
    const recent = await engine.enqueue('t', {});
    expect(await engine.cleanup({ olderThan: 5_000 })).toEqual({ removed: 1 });
    expect(await engine.get(old)).toBeUndefined();
    expect(await engine.get(recent)).toBeDefined();
  });

  it('storeResult: false keeps no result', async () => {
    const engine = await open(tempDbPath(), { immediate: true });
    engine.task('secret', async () => ({ token: 'hunter2' }), { storeResult: false });
    const id = await engine.enqueue('secret', {});
    expect(await engine.get(id)).toMatchObject({ status: 'completed', result: null });
  });

  it('refuses a negative resultTtl', async () => {
    const file = tempDbPath();
    await expect(createEngine({ database: file, resultTtl: -1 })).rejects.toMatchObject({ code: 'INVALID_OPTION' });
    const engine = await open(file);
    expect(() => engine.task('t', async () => 1, { resultTtl: -5 })).toThrow(expect.objectContaining({ code: 'INVALID_OPTION' }));
  });
});

describe('dead letters', () => {
  it('records a promise that failed for good, and retry() takes it back with a history line', async () => {
    const engine = await open(tempDbPath(), { immediate: true });
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
    const engine = await open(tempDbPath(), { immediate: true, clock: manualClock('2026-02-01T00:00:00Z') });
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
    const engine = await open(tempDbPath(), { immediate: true });
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
    const file = tempDbPath();
    const engine = await open(file);
    engine.task('ship', async () => 1, { onComplete: 'nobody' });
    const before = dumpDb(file);
    await expect(engine.enqueue('ship', {})).rejects.toMatchObject({ code: 'UNKNOWN_TASK_TYPE' });
    await expect(engine.start()).rejects.toMatchObject({ code: 'UNKNOWN_TASK_TYPE' });
    expect(dumpDb(file)).toEqual(before);
  });

  it('a follow-up survives a SIGKILL between the completion and its own run', async () => {
    const file = tempDbPath();
    const log = path.join(tempDir(), 'notify.log');
    const first = spawnFixture('lifecycle-worker.ts', ['follow-up', file, log]);
    children.push(first);
    await first.waitForLine('notify-running');
    kill(first.child, 'SIGKILL');
    await first.exited;
    const second = spawnFixture('lifecycle-worker.ts', ['follow-up', file, log]);
    children.push(second);
    await second.waitForLine('notified');
    kill(second.child, 'SIGTERM');
    await second.exited;
    const raw = new BetterSqlite3(file, { readonly: true });
    const rows = raw.prepare(`select type, status from promises order by id`).all();
    raw.close();
    expect(rows).toEqual([
      { type: 'main', status: 'completed' },
      { type: 'notify', status: 'completed' },
    ]);
    const lines = fs.readFileSync(log, 'utf8').trim().split('\n');
    expect(lines).toEqual(['notify 1 {"shipped":true}', 'notify 1 {"shipped":true}']);
  });
});

describe('inbox', () => {
  const window = 60_000;

  async function inboxAt(file: string, clock: ReturnType<typeof manualClock>, seen: string[]) {
    const engine = await open(file, { clock });
    const inbox = engine.inbox('mail', (message: { subject: string }) => void seen.push(message.subject), { catchUpWindow: window });
    return { engine, inbox };
  }

  it('catches up on messages stored while down: inside and exactly at the window run, outside is recorded as skipped', async () => {
    const file = tempDbPath();
    const clock = manualClock('2026-02-01T12:00:00Z');
    const seen: string[] = [];
    const down = await inboxAt(file, clock, seen);
    const startAt = clock.now() + 10_000;
    const received = (age: number) => new Date(startAt - age);
    await down.inbox.receive({ subject: 'just inside' }, { id: 'm1', receivedAt: received(window - 1) });
    await down.inbox.receive({ subject: 'exactly at' }, { id: 'm2', receivedAt: received(window) });
    await down.inbox.receive({ subject: 'just outside' }, { id: 'm3', receivedAt: received(window + 1) });
    expect((await down.inbox.receive({ subject: 'again' }, { id: 'm1', receivedAt: received(0) })).outcome).toBe('duplicate');
    await stopAll();

    clock.set(startAt);
    const up = await inboxAt(file, clock, seen);
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
    const { engine, inbox } = await inboxAt(tempDbPath(), clock, seen);
    await engine.start();
    expect((await inbox.receive({ subject: 'fresh' }, { id: 'a', receivedAt: clock.now() - window })).outcome).toBe('accepted');
    expect((await inbox.receive({ subject: 'stale' }, { id: 'b', receivedAt: clock.now() - window - 1 })).outcome).toBe('skipped');
    await until(() => seen.length === 1);
    expect(seen).toEqual(['fresh']);
  });

  it('refuses a message without an id, writing nothing', async () => {
    const file = tempDbPath();
    const { inbox } = await inboxAt(file, manualClock(Date.now()), []);
    const before = dumpDb(file);
    await expect(inbox.receive({ subject: 'x' }, { id: '' })).rejects.toMatchObject({ code: 'INVALID_MESSAGE' });
    await expect(inbox.receive({ subject: 'x' }, {} as { id: string })).rejects.toMatchObject({ code: 'INVALID_MESSAGE' });
    expect(dumpDb(file)).toEqual(before);
  });
});

describe('stats', () => {
  it('counts by status and type, the oldest due wait, and recent throughput', async () => {
    const clock = manualClock('2026-03-01T00:00:00Z');
    const engine = await open(tempDbPath(), { clock });
    engine.task('a', async () => 1);
    engine.task('b', async () => 1);
    await engine.enqueue('a', {});
    clock.advance(5_000);
    await engine.enqueue('b', {});
    const stats = await engine.stats();
    expect(stats).toMatchObject({ pending: 2, byType: { a: { pending: 1 }, b: { pending: 1 } }, oldestPendingAgeMs: 5_000, deadLetters: 0 });
    expect(stats.recent.completedLastMinute).toBe(0);
  });
});
