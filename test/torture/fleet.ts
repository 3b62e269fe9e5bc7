// The saturated fleet: worker processes on one database (SQLite: one file; PostgreSQL: one
// server) drain a steady backlog larger than they can drain quickly, and one of them is SIGKILLed
// at a random instant while it holds claims, then replaced (but the last), `kills` times. Checks 0 lost, 0
// duplicated completions (each promise committed once; handler start/end logged per process),
// 0 stuck, and that every claim a dead worker held was taken back (LEASE_LOST, read from the
// promise history) within two leases of the kill, while the survivors were still saturated.
import { createEngine } from '../../src/index.js';
import { freshDatabase, type CampaignBackend } from './campaign-database.js';
import { engineErrors, readLog, sleep, startCampaignProcess, stopCampaignProcess, sumCounts, type CampaignProcess } from './campaign-process.js';

export interface FleetOptions {
  backend: CampaignBackend;
  /** Worker processes. @defaultValue 4 */
  workers?: number;
  /** Handler slots per worker. @defaultValue 4 */
  concurrency?: number;
  /** @defaultValue 1_000 */
  leaseMs?: number;
  /** Workers SIGKILLed, one after another (each replaced once its claims came back). */
  kills: number;
  /** Promises kept pending while the kills go on (a backlog the fleet cannot drain quickly). @defaultValue 1_500 */
  backlog?: number;
  keep?: boolean;
  log?: (line: string) => void;
}

export interface FleetKill {
  /** Claims the victim held when it died (in_progress rows leased to it). */
  held: number;
  /** Time from the SIGKILL to the committed LEASE_LOST of each claim it held, ms: the slowest and the fastest. */
  slowestMs: number;
  fastestMs: number;
  /** Promises still pending when its last claim came back: the survivors were saturated. */
  backlog: number;
}

export interface FleetReport {
  backend: string;
  workers: number;
  concurrency: number;
  leaseMs: number;
  promises: number;
  kills: number;
  /** Claims the victims held when they died, all kills together. */
  claimsHeld: number;
  /** Of those, not taken back (no LEASE_LOST of that attempt). */
  claimsNotRecovered: number;
  /** Time from a kill to the committed LEASE_LOST of a claim the victim held (seen within 25 ms), ms. */
  fastestRecoveryMs: number;
  medianRecoveryMs: number;
  slowestRecoveryMs: number;
  /** The smallest backlog left when a victim's last claim came back. */
  lowestBacklogAtRecovery: number;
  lost: number;
  duplicatedCompletions: number;
  stuck: number;
  /** Handlers run again (at-least-once): the victims' claims, and any other lost lease. */
  reruns: number;
  /** LEASE_LOST of claims held by live workers (their heartbeat came too late). */
  liveLeaseLosses: number;
  /** Deadlocks the server detected in this database (PostgreSQL; 0 on SQLite). */
  deadlocks: number;
  seconds: number;
}

export interface FleetResult {
  report: FleetReport;
  perKill: FleetKill[];
  engineErrors: Record<string, number>;
}

export async function fleet(options: FleetOptions): Promise<FleetResult> {
  const say = options.log ?? (() => undefined);
  const workerCount = options.workers ?? 4;
  const concurrency = options.concurrency ?? 4;
  const leaseMs = options.leaseMs ?? 1_000;
  const backlog = options.backlog ?? 1_500;
  const began = Date.now();
  const db = await freshDatabase(options.backend, 'fleet');
  const workers: CampaignProcess[] = [];
  let kept = false;
  let topping = true;
  let topUp: Promise<void> = Promise.resolve();
  try {
    const producer = await createEngine({ database: db.url, changeCheckIntervalMs: 0, cleanupIntervalMs: 0 });
    producer.task('fleet', async () => null, { retryDelay: 0 });
    const acknowledged = new Set<number>();
    const enqueue = async (count: number) => {
      const ids = await producer.enqueueMany(Array.from({ length: count }, () => ({ type: 'fleet', payload: { ms: 20 + Math.floor(Math.random() * 60) } })));
      for (const id of ids) acknowledged.add(Number(id));
    };
    const pending = async () => Number((await db.rows<{ n: number }>(`select count(*) as n from promises where status = 'pending'`))[0]!.n);
    await enqueue(backlog);
    let started = 0;
    const startWorker = () => startCampaignProcess('fleet-worker.ts', db.dir, `fleet-worker-${started++}`, [db.url, String(leaseMs), String(concurrency)]);
    workers.push(...(await Promise.all(Array.from({ length: workerCount }, startWorker))));
    say(`  fleet on ${db.backend}: ${workerCount} workers × ${concurrency} slots, lease ${leaseMs} ms, ${backlog} pending kept`);
    // A steady backlog: topped up whenever the fleet drained some of it.
    topUp = (async () => {
      while (topping) {
        const missing = backlog - (await pending());
        if (missing > 0) await enqueue(Math.min(missing, 1_000));
        await sleep(200);
      }
    })();

    const heldBy = (owner: string) => db.rows<{ id: number; attempts: number }>(`select id, attempts from promises where status = 'in_progress' and lease_owner = ?`, [owner]);
    const perKill: FleetKill[] = [];
    const victimClaims = new Set<string>();
    const recoveries: number[] = [];
    let claimsNotRecovered = 0;
    for (let attempt = 0; perKill.length < options.kills && attempt < options.kills * 3; attempt++) {
      // A random instant of a steady run, while the victim holds claims.
      await sleep(300 + Math.random() * 1_200);
      const live = workers.filter((worker) => worker.alive());
      const victim = live[Math.floor(Math.random() * live.length)]!;
      let holds = false;
      for (const deadline = Date.now() + 10_000; !holds && Date.now() < deadline; ) {
        holds = (await heldBy(victim.owner)).length > 0;
        if (!holds) await sleep(10);
      }
      if (!holds) {
        say(`  fleet on ${db.backend}: the chosen victim held no claim for 10 s; choosing again`);
        continue;
      }
      await sleep(Math.random() * 200);
      victim.child.kill('SIGKILL');
      const killedAt = Date.now();
      await victim.exited;
      // What it held, by the database (the truth once it is dead; nobody takes a claim back before its lease expires).
      const held = await heldBy(victim.owner);
      if (held.length === 0) {
        say(`  fleet on ${db.backend}: a kill landed between claims; killing again`);
        workers.push(await startWorker());
        continue;
      }
      for (const claim of held) victimClaims.add(`${claim.id}:${claim.attempts}`);
      // When each LEASE_LOST of an attempt it held became visible (committed), polled every 25 ms.
      // (The history's own `at` is when the recovering transaction began, which may be before
      // the kill when the victim's lease had already run out: its heartbeat came late.)
      const recoveredAt = new Map<number, number>();
      const deadline = Date.now() + 4 * leaseMs + 15_000;
      while (recoveredAt.size < held.length && Date.now() < deadline) {
        const ids = held.map((claim) => claim.id).join(',');
        const lines = await db.rows<{ promise_id: number; attempt: number }>(`select promise_id, attempt from promise_history where event = 'LEASE_LOST' and promise_id in (${ids})`);
        const seenAt = Date.now();
        for (const line of lines) {
          const claim = held.find((c) => Number(c.id) === Number(line.promise_id));
          if (claim && Number(claim.attempts) === Number(line.attempt) && !recoveredAt.has(Number(claim.id))) recoveredAt.set(Number(claim.id), seenAt);
        }
        if (recoveredAt.size < held.length) await sleep(25);
      }
      const backlogNow = await pending();
      claimsNotRecovered += held.length - recoveredAt.size;
      const times = [...recoveredAt.values()].map((at) => Math.max(0, at - killedAt));
      recoveries.push(...times);
      perKill.push({ held: held.length, slowestMs: times.length ? Math.max(...times) : Number.POSITIVE_INFINITY, fastestMs: times.length ? Math.min(...times) : Number.POSITIVE_INFINITY, backlog: backlogNow });
      say(`  fleet on ${db.backend}: kill ${perKill.length}: ${held.length} claims held, taken back ${times.length ? `${Math.min(...times)}–${Math.max(...times)} ms` : 'never'} after the kill, ${backlogNow} pending`);
      // Replaced for the next kill; the last one's survivors drain what is left.
      if (perKill.length < options.kills) workers.push(await startWorker());
    }
    topping = false;
    await topUp;
    await producer.stop();
    const drainDeadline = Date.now() + 180_000;
    while (Number((await db.rows<{ n: number }>(`select count(*) as n from promises where status <> 'completed'`))[0]!.n) > 0 && Date.now() < drainDeadline) await sleep(200);
    await Promise.all(workers.filter((worker) => worker.alive()).map((worker) => stopCampaignProcess(worker, 15_000)));

    const rows = await db.rows<{ id: number; status: string; attempts: number }>('select id, status, attempts from promises');
    const byId = new Map(rows.map((row) => [Number(row.id), row]));
    const starts = new Map<number, number>();
    const ends = new Map<string, number>();
    const commits = new Map<number, number>();
    for (const entry of workers.flatMap((worker) => readLog(worker.log))) {
      if (entry.event === 'start') starts.set(entry.id, (starts.get(entry.id) ?? 0) + 1);
      if (entry.event === 'end') ends.set(`${entry.id}:${entry.attempt}`, (ends.get(`${entry.id}:${entry.attempt}`) ?? 0) + 1);
      if (entry.event === 'commit') commits.set(entry.id, (commits.get(entry.id) ?? 0) + 1);
    }
    let lost = 0;
    for (const id of acknowledged) {
      const row = byId.get(id);
      if (row?.status !== 'completed' || !ends.has(`${id}:${row.attempts}`)) lost++;
    }
    const duplicatedCompletions =
      [...commits.values()].filter((count) => count > 1).length + rows.filter((row) => (ends.get(`${row.id}:${row.attempts}`) ?? 0) > 1).length;
    const leaseLost = await db.rows<{ promise_id: number; attempt: number }>(`select promise_id, attempt from promise_history where event = 'LEASE_LOST'`);
    const deadlocks = db.backend === 'PostgreSQL' ? Number((await db.rows<{ n: number }>('select deadlocks as n from pg_stat_database where datname = current_database()'))[0]!.n) : 0;
    const sorted = [...recoveries].sort((a, b) => a - b);
    const report: FleetReport = {
      backend: db.backend,
      workers: workerCount,
      concurrency,
      leaseMs,
      promises: acknowledged.size,
      kills: perKill.length,
      claimsHeld: perKill.reduce((sum, kill) => sum + kill.held, 0),
      claimsNotRecovered,
      fastestRecoveryMs: sorted[0] ?? Number.NaN,
      medianRecoveryMs: sorted[Math.floor(sorted.length / 2)] ?? Number.NaN,
      slowestRecoveryMs: sorted[sorted.length - 1] ?? Number.NaN,
      lowestBacklogAtRecovery: Math.min(...perKill.map((kill) => kill.backlog)),
      lost,
      duplicatedCompletions,
      stuck: rows.filter((row) => row.status !== 'completed').length,
      reruns: [...starts.values()].reduce((sum, n) => sum + n - 1, 0),
      liveLeaseLosses: leaseLost.filter((line) => !victimClaims.has(`${line.promise_id}:${line.attempt}`)).length,
      deadlocks,
      seconds: Math.round((Date.now() - began) / 1_000),
    };
    kept = !!options.keep || fleetFailures(report, options.kills).length > 0;
    if (kept) say(`  fleet on ${db.backend}: kept ${db.dir}`);
    return { report, perKill, engineErrors: sumCounts(workers.map((worker) => engineErrors(worker.stderr))) };
  } finally {
    topping = false;
    await topUp.catch(() => undefined);
    for (const worker of workers) if (worker.alive()) worker.child.kill('SIGKILL');
    await db.close(kept);
  }
}

/** The checks of the fleet phase that failed, in words (empty: passed). */
export function fleetFailures(report: FleetReport, kills: number): string[] {
  const failures: string[] = [];
  if (report.kills < kills) failures.push(`only ${report.kills} of ${kills} kills landed while the victim held claims`);
  if (report.lost > 0) failures.push(`${report.lost} promises lost`);
  if (report.duplicatedCompletions > 0) failures.push(`${report.duplicatedCompletions} promises completed twice`);
  if (report.stuck > 0) failures.push(`${report.stuck} promises stuck`);
  if (report.claimsNotRecovered > 0) failures.push(`${report.claimsNotRecovered} claims of dead workers never taken back`);
  if (!(report.slowestRecoveryMs <= 2 * report.leaseMs)) failures.push(`a dead worker's claim came back ${report.slowestRecoveryMs} ms after the kill (more than two leases)`);
  if (!(report.lowestBacklogAtRecovery > 0)) failures.push('the backlog was drained before the claims came back: the survivors were not saturated');
  return failures;
}
