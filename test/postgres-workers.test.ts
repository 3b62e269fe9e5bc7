import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { createEngine, type Engine, type GraphNode } from '../src/index.js';
import { Engine as EngineClass } from '../src/engine/engine.js';
import { resolveEngineOptions } from '../src/kernel/options.js';
import { openPostgresStore } from '../src/persistence/postgres/open-postgres-store.js';
import { kill, spawnFixture } from './helpers/child.js';
import { createFreshDatabase, findPostgresBinaries, startPostgres, type RunningPostgres } from './helpers/postgres.js';
import { tempDir } from './helpers/temp-db.js';
import { deferred, until } from './helpers/wait.js';

// Several worker processes on one PostgreSQL database: every promise runs in dependency order,
// is claimed by one live worker at a time and completed exactly once, whichever process claims
// it, even when a worker is SIGKILLed and the server restarts mid-run.

const adminUrl = inject('postgresAdminUrl');
if (!adminUrl) console.warn(`PostgreSQL worker tests skipped: ${inject('postgresSkipReason')}`);

const children: Array<ReturnType<typeof spawnFixture>> = [];
const engines: Engine[] = [];
const pools: pg.Pool[] = [];
afterEach(async () => {
  for (const engine of engines.splice(0)) await engine.stop().catch(() => {});
  for (const worker of children.splice(0)) kill(worker.child, 'SIGKILL');
  for (const pool of pools.splice(0)) await pool.end().catch(() => {});
});

interface Fact {
  pid: string;
  at: number;
}
interface Facts {
  claims: Fact[];
  runs: Fact[];
  dones: Fact[];
  aborts: Fact[];
}

/** Reads every worker's log: per promise id, its claims, handler runs and completions, in time order. */
function readLogs(dir: string): { byId: Map<string, Facts>; errors: string[] } {
  const byId = new Map<string, Facts>();
  const errors: string[] = [];
  for (const file of fs.readdirSync(dir)) {
    for (const line of fs.readFileSync(path.join(dir, file), 'utf8').split('\n').filter(Boolean)) {
      const [kind, id, pid, at, ...rest] = line.split(' ') as [string, string, string, string, ...string[]];
      if (kind === 'error') {
        errors.push(`${pid}: ${rest.join(' ')}`);
        continue;
      }
      let facts = byId.get(id);
      if (!facts) byId.set(id, (facts = { claims: [], runs: [], dones: [], aborts: [] }));
      const list = kind === 'claim' ? facts.claims : kind === 'run' ? facts.runs : kind === 'abort' ? facts.aborts : facts.dones;
      list.push({ pid, at: Number(at) });
    }
  }
  for (const facts of byId.values()) for (const list of [facts.claims, facts.runs, facts.dones, facts.aborts]) list.sort((a, b) => a.at - b.at);
  return { byId, errors };
}

/** A graph of `chains` chains of 4 (a → b → c → d) and `fans` fan-ins (8 parts → 1 join). */
function buildGraph(chains: number, fans: number, tag: string, counter: { n: number }): Record<string, GraphNode> {
  const graph: Record<string, GraphNode> = {};
  for (let c = 0; c < chains; c++) {
    const names = ['a', 'b', 'c', 'd'].map((step) => `${tag}chain${c}${step}`);
    names.forEach((name, i) => (graph[name] = { type: 'work', payload: { n: counter.n++ }, dependsOn: i === 0 ? [] : [names[i - 1]!] }));
  }
  for (let f = 0; f < fans; f++) {
    const parts = Array.from({ length: 8 }, (_, i) => `${tag}fan${f}part${i}`);
    for (const part of parts) graph[part] = { type: 'work', payload: { n: counter.n++ } };
    graph[`${tag}fan${f}join`] = { type: 'work', payload: { n: counter.n++ }, dependsOn: parts };
  }
  return graph;
}

/** A pool for the test's own reads, which tolerates the server going away (`query` returns null then). */
function observer(database: string) {
  const pool = new pg.Pool({ connectionString: database, max: 2, connectionTimeoutMillis: 5_000 });
  pool.on('error', () => {});
  pools.push(pool);
  return {
    async counts(): Promise<Record<string, number> | null> {
      try {
        const { rows } = await pool.query<{ status: string; count: string }>('select status, count(*) as count from promises group by status');
        return Object.fromEntries(rows.map((row) => [row.status, Number(row.count)]));
      } catch {
        return null;
      }
    },
    async query<Row extends pg.QueryResultRow>(text: string): Promise<Row[]> {
      return (await pool.query<Row>(text)).rows;
    },
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** `until` at a gentler pace: each check is a count over every promise, and the machine is shared. */
async function poll(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

describe.skipIf(!adminUrl)('worker processes on PostgreSQL', () => {
  it('4 workers over 2,100 promises with dependencies: each runs once, after its parents', async () => {
    const database = await createFreshDatabase(adminUrl!);
    const producer = await createEngine({ database, cleanupIntervalMs: 0 });
    engines.push(producer);
    producer.task('work', async () => null);
    const logs = tempDir();
    // Nothing here may run twice, so no live worker may lose a lease: a lease far longer than
    // any stall of a loaded 2-core machine (a 5 s lease was lost once at load average 13).
    const options = JSON.stringify({ leaseMs: 30_000 });
    const workers = [0, 1, 2, 3].map((i) => spawnFixture('pg-worker.ts', [database, path.join(logs, `worker-${i}.log`), options]));
    children.push(...workers);
    await Promise.all(workers.map((worker) => worker.waitForLine('started', 30_000)));

    // Enqueued while the workers run: they are woken by NOTIFY, not by polling.
    const parentsOf = new Map<string, string[]>();
    const counter = { n: 0 };
    for (let batch = 0; batch < 10; batch++) {
      const graph = buildGraph(30, 10, `b${batch}`, counter);
      const ids = await producer.enqueueGraph(graph);
      for (const [name, node] of Object.entries(graph)) parentsOf.set(ids[name]!, (node.dependsOn ?? []).map((parent) => ids[parent]!));
    }
    const total = parentsOf.size;
    expect(total).toBe(2_100);

    const db = observer(database);
    await poll(async () => ((await db.counts()) ?? {}).completed === total, 90_000, `all ${total} completed`);
    await Promise.all(workers.map(async (worker) => {
      kill(worker.child, 'SIGTERM');
      expect(await worker.exited).toBe(0);
    }));

    const { byId, errors } = readLogs(logs);
    expect(errors).toEqual([]);
    expect(byId.size).toBe(total);
    // One claim, one run, one completion each, by the same process.
    const notOnce = [...byId].filter(([, f]) => f.claims.length !== 1 || f.runs.length !== 1 || f.dones.length !== 1 || f.aborts.length !== 0);
    expect(notOnce).toEqual([]);
    expect([...byId].filter(([, f]) => f.claims[0]!.pid !== f.runs[0]!.pid || f.runs[0]!.pid !== f.dones[0]!.pid)).toEqual([]);
    // Every process took a share of the work.
    expect(new Set([...byId.values()].map((f) => f.runs[0]!.pid)).size).toBe(4);
    for (const [id, parents] of parentsOf) {
      for (const parent of parents) expect(byId.get(id)!.runs[0]!.at).toBeGreaterThanOrEqual(byId.get(parent)!.runs[0]!.at);
    }
    const stats = await producer.stats();
    expect(stats).toMatchObject({ completed: total, failed: 0, pending: 0, waiting: 0, in_progress: 0 });
    // Claimed once each: one attempt, no lease ever lost.
    const rows = await producer.list({ type: 'work', limit: total });
    expect(rows.filter((row) => row.attempts !== 1)).toEqual([]);
  }, 120_000);
});

// These restart their own server: the shared one serves other test files at the same time.
const binaries = findPostgresBinaries();
describe.skipIf(!adminUrl || 'missing' in binaries)('worker processes on a PostgreSQL server that restarts', () => {
  let server: RunningPostgres;
  beforeAll(async () => {
    server = await startPostgres();
  }, 60_000);
  afterAll(() => server?.destroy());

  it(
    '4 workers, 10,000 promises with dependencies, one worker SIGKILLed and the server restarted mid-run: all completed once, in order, none lost',
    async () => {
      const started = Date.now();
      console.log(`started at ${started}`);
      const mark = (what: string) => console.log(`[${((Date.now() - started) / 1000).toFixed(1)} s] ${what}`);
      const database = await createFreshDatabase(server.adminUrl);
      const producer = await createEngine({ database, cleanupIntervalMs: 0 });
      engines.push(producer);
      producer.task('work', async () => null);
      const logs = tempDir();
      // A lease well above the restart's outage (a couple of seconds, more under load) plus a
      // heartbeat interval, so that no live worker loses one; the killed worker's leases
      // expire 15 s after its last heartbeat.
      const leaseMs = 15_000;
      const workerOptions = JSON.stringify({ concurrency: 16, leaseMs, workMs: 8 });
      const workers = [0, 1, 2, 3].map((i) => spawnFixture('pg-worker.ts', [database, path.join(logs, `worker-${i}.log`), workerOptions]));
      children.push(...workers);
      await Promise.all(workers.map((worker) => worker.waitForLine('started', 30_000)));
      mark('4 workers started');

      const db = observer(database);
      const parentsOf = new Map<string, string[]>();
      const counter = { n: 0 };
      const enqueued = (async () => {
        for (let batch = 0; batch < 10; batch++) {
          const graph = buildGraph(160, 40, `b${batch}`, counter);
          const ids = await producer.enqueueGraph(graph);
          for (const [name, node] of Object.entries(graph)) parentsOf.set(ids[name]!, (node.dependsOn ?? []).map((parent) => ids[parent]!));
        }
      })();
      const total = 10_000;

      // Mid-run: SIGKILL worker 0 while it holds claims.
      await poll(async () => ((await db.counts()) ?? {}).completed! >= 2_000, 90_000, 'a first 2,000 completed');
      const victim = workers[0]!;
      const killedPid = String(victim.child.pid);
      // On a loaded machine the victim may be between claims at that moment: wait until it holds some.
      await poll(async () => (await db.query(`select 1 from promises where status = 'in_progress' and lease_owner like '%:${killedPid}:%' limit 1`)).length > 0, 30_000, 'claims held by the victim');
      const killedAt = Date.now();
      kill(victim.child, 'SIGKILL');
      await victim.exited;
      mark(`worker ${killedPid} SIGKILLed`);
      await enqueued;
      mark('10,000 enqueued');
      expect(parentsOf.size).toBe(total);

      // Then restart the server while the others work (the victim's leases are still running).
      await poll(async () => ((await db.counts()) ?? {}).completed! >= 4_000, 90_000, '4,000 completed');
      const atStop = (await db.counts())!;
      const stoppedAt = Date.now();
      server.stop();
      await sleep(2_000);
      server.start();
      const restartedAt = Date.now();
      mark(`server stopped with ${atStop.completed} completed, started again`);
      for (const worker of workers.slice(1)) expect(worker.child.exitCode, `worker ${worker.child.pid} died during the restart: ${worker.stderr()}`).toBeNull();

      let last: Record<string, number> = {};
      await poll(
        async () => {
          last = (await db.counts()) ?? last;
          return (last.completed ?? 0) + (last.failed ?? 0) === total;
        },
        150_000,
        `all ${total} completed or failed`,
      ).catch((error: Error) => {
        if (process.env.PG_WORKER_LOGS) fs.cpSync(logs, process.env.PG_WORKER_LOGS, { recursive: true });
        throw new Error(`${error.message}; last counts ${JSON.stringify(last)}`);
      });
      const finishedAt = Date.now();
      mark('all completed');
      await Promise.all(workers.slice(1).map(async (worker) => {
        expect(worker.child.exitCode, `worker ${worker.child.pid} died: ${worker.stderr()}`).toBeNull();
        kill(worker.child, 'SIGTERM');
        expect(await worker.exited).toBe(0);
      }));

      // PG_WORKER_LOGS=<folder> keeps the workers' logs for a closer look.
      if (process.env.PG_WORKER_LOGS) fs.cpSync(logs, process.env.PG_WORKER_LOGS, { recursive: true });
      // From the database: every promise completed, none failed, none lost.
      const rows = await db.query<{ id: string; status: string; attempts: number; lease_losses: number; error_code: string | null }>(
        'select id::text as id, status, attempts::int as attempts, lease_losses::int as lease_losses, error_code from promises',
      );
      const failed = rows.filter((row) => row.status !== 'completed');
      expect(failed, `not completed: ${JSON.stringify(failed.slice(0, 10))}`).toEqual([]);
      expect(new Set(rows.map((row) => row.id))).toEqual(new Set(parentsOf.keys()));
      const rowOf = new Map(rows.map((row) => [row.id, row]));

      // From the side-effect logs.
      const { byId, errors } = readLogs(logs);
      const problems: string[] = [];
      const heldByVictim: string[] = [];
      let unloggedVictimClaims = 0;
      const lostAt = new Map(
        (await db.query<{ id: string; at: string }>(`select promise_id::text as id, max(at)::text as at from promise_history where event = 'LEASE_LOST' group by promise_id`)).map(
          (row) => [row.id, Number(row.at)],
        ),
      );
      for (const [id, row] of rowOf) {
        const facts = byId.get(id);
        if (!facts || facts.runs.length === 0) {
          problems.push(`${id}: never ran`);
          continue;
        }
        const { claims, runs, dones, aborts } = facts;
        // No live worker's handler was ever stopped (its claim judged lost).
        if (aborts.length > 0) problems.push(`${id}: handler aborted ${JSON.stringify(aborts)}`);
        const first = claims[0];
        // A second claim only after the killed worker's lease expired: never two live holders.
        const victimFirst = first?.pid === killedPid || (claims.length < row.attempts && row.lease_losses === 1 && (lostAt.get(id) ?? 0) >= killedAt);
        // A claim is logged after its commit: the killed worker may have died in between (then
        // its claim is the one missing, and the promise lost that lease once, after the kill).
        const unloggedClaim = claims.length === row.attempts - 1 && row.lease_losses === 1 && (lostAt.get(id) ?? 0) >= killedAt;
        if (unloggedClaim) unloggedVictimClaims++;
        else if (claims.length !== row.attempts) problems.push(`${id}: ${claims.length} claims logged, ${row.attempts} attempts stored`);
        if (claims.length > 2 || (claims.length === 2 && (!victimFirst || claims[1]!.at < killedAt))) {
          problems.push(`${id}: claimed ${JSON.stringify(claims)}`);
        }
        if (row.attempts !== 1 + row.lease_losses || row.lease_losses > (victimFirst ? 1 : 0)) {
          problems.push(`${id}: ${row.attempts} attempts, ${row.lease_losses} lease losses, first claim ${JSON.stringify(first)}`);
        }
        // Each handler ran once, except where the killed worker had it in flight (then at most twice).
        if (runs.length > 2 || (runs.length === 2 && runs[0]!.pid !== killedPid)) problems.push(`${id}: ran ${JSON.stringify(runs)}`);
        // Completed once, reported (after its commit) by the process whose run it was.
        const completer = claims[claims.length - 1]?.pid;
        if (dones.length > 1 || (dones.length === 0 && completer !== killedPid) || (dones.length === 1 && dones[0]!.pid !== completer)) {
          problems.push(`${id}: completion reported ${JSON.stringify(dones)}, last claim by ${completer}`);
        }
        if (runs[runs.length - 1]!.pid !== completer) problems.push(`${id}: last run ${JSON.stringify(runs)}, last claim by ${completer}`);
        if (victimFirst && row.attempts === 2) heldByVictim.push(id);
        // Dependency order: every run of a child started after its parents' completing runs started.
        for (const parent of parentsOf.get(id)!) {
          const parentRuns = byId.get(parent)?.runs ?? [];
          const parentDone = parentRuns[parentRuns.length - 1];
          if (!parentDone || runs[0]!.at < parentDone.at) problems.push(`${id}: ran at ${runs[0]!.at} before its parent ${parent} (${parentDone?.at})`);
        }
      }
      expect(problems.slice(0, 20), `${problems.length} problems`).toEqual([]);
      // At most one claim batch of the killed worker can have committed unlogged.
      expect(unloggedVictimClaims).toBeLessThanOrEqual(16);
      // The killed worker held claims in flight, and the others finished them.
      expect(heldByVictim.length).toBeGreaterThan(0);
      for (const id of heldByVictim) expect(byId.get(id)!.dones.map((done) => done.pid)).not.toContain(killedPid);
      // The restart happened mid-run: work was left, and got done after it.
      expect(atStop.completed ?? 0).toBeLessThan(total - 1_000);

      const reran = heldByVictim.filter((id) => byId.get(id)!.runs.length === 2).length;
      const sharePerPid = new Map<string, number>();
      for (const facts of byId.values()) {
        const pid = facts.dones[0]?.pid ?? killedPid;
        sharePerPid.set(pid, (sharePerPid.get(pid) ?? 0) + 1);
      }
      console.log(
        `10,000 promises, 4 workers: killed ${killedPid} at ${((killedAt - started) / 1000).toFixed(1)} s holding ${heldByVictim.length} claims ` +
          `(${reran} of them already running, run again elsewhere); server stopped at ${((stoppedAt - started) / 1000).toFixed(1)} s ` +
          `with ${atStop.completed} completed, back after ${((restartedAt - stoppedAt) / 1000).toFixed(1)} s; all completed at ` +
          `${((finishedAt - started) / 1000).toFixed(1)} s (${((finishedAt - restartedAt) / 1000).toFixed(1)} s after the restart); ` +
          `completions per process ${JSON.stringify(Object.fromEntries(sharePerPid))}; ${errors.length} background errors reported by the workers ` +
          `(${[...new Set(errors.map((error) => error.replace(/^\d+: /, '').slice(0, 80)))].slice(0, 3).join(' | ')})`,
      );
    },
    240_000,
  );

  it('an in-process engine whose server restarts while a handler runs commits the result after reconnecting, and reports it only then', async () => {
    const database = await createFreshDatabase(server.adminUrl);
    const engine = await createEngine({ database, concurrency: 4, leaseMs: 20_000, cleanupIntervalMs: 0 });
    engines.push(engine);
    const entered = deferred();
    const gate = deferred();
    let running = 0;
    engine.task('slow', async (payload: { n: number }) => {
      if (++running === 3) entered.resolve();
      await gate.promise;
      return { n: payload.n, ok: true };
    });
    const reported: Array<{ id: string; at: number }> = [];
    engine.on('completed', (record) => reported.push({ id: record.id, at: Date.now() }));
    const succeeded: Array<{ id: string; at: number }> = [];
    engine.on('transition', (t) => t.event === 'SUCCEED' && succeeded.push({ id: t.id, at: Date.now() }));
    await engine.start();
    const ids = await engine.enqueueMany([1, 2, 3].map((n) => ({ type: 'slow', payload: { n } })));
    await entered.promise;

    server.stop();
    const stoppedAt = Date.now();
    // The handlers finish while the server is down: their results are kept, not reported.
    gate.resolve();
    await sleep(1_500);
    expect(succeeded).toEqual([]);
    expect(reported).toEqual([]);
    server.start();
    const restartedAt = Date.now();
    await until(() => reported.length === 3, 30_000, 'the 3 completions reported after the restart');
    for (const { at } of [...succeeded, ...reported]) expect(at).toBeGreaterThanOrEqual(restartedAt);
    expect(new Set(reported.map((r) => r.id))).toEqual(new Set(ids));
    const db = observer(database);
    const rows = await db.query<{ status: string; attempts: number; result: string }>('select status, attempts::int as attempts, result from promises order by id');
    expect(rows.map((row) => [row.status, row.attempts])).toEqual([['completed', 1], ['completed', 1], ['completed', 1]]);
    expect(rows.map((row) => JSON.parse(row.result))).toEqual([1, 2, 3].map((n) => ({ n, ok: true })));
    console.log(`in-process restart: server down ${restartedAt - stoppedAt} ms; 3 results committed ${Math.max(...reported.map((r) => r.at)) - restartedAt} ms after it came back`);
  }, 60_000);

  it('past the store\'s reconnect timeout, the engine keeps the outcomes and commits them once the server is back', async () => {
    const database = await createFreshDatabase(server.adminUrl);
    // A 500 ms reconnect budget: the outage outlasts it, so the error reaches the engine.
    const store = await openPostgresStore({ connectionString: database, reconnectTimeoutMs: 500 });
    const engine = new EngineClass(store, resolveEngineOptions({ database, concurrency: 2, leaseMs: 20_000, cleanupIntervalMs: 0 }));
    engines.push(engine);
    const entered = deferred();
    const gate = deferred();
    engine.task('slow', async () => {
      entered.resolve();
      await gate.promise;
      return 'done';
    });
    const reported: number[] = [];
    engine.on('completed', () => reported.push(Date.now()));
    const errors: string[] = [];
    engine.on('error', (error) => errors.push(error.message));
    await engine.start();
    const [id] = await engine.enqueueMany([{ type: 'slow', payload: {} }]);
    await entered.promise;
    server.stop();
    gate.resolve();
    await sleep(2_500);
    expect(reported).toEqual([]);
    expect(errors.length).toBeGreaterThan(0);
    server.start();
    const restartedAt = Date.now();
    await until(() => reported.length === 1, 30_000, 'the completion reported after the restart');
    expect(reported[0]).toBeGreaterThanOrEqual(restartedAt);
    expect(await engine.result(id!)).toBe('done');
    const record = await engine.get(id!);
    expect(record).toMatchObject({ status: 'completed', attempts: 1 });
  }, 60_000);
});
