// The poison phase: a fleet of worker processes on one database runs a steady stream of healthy
// promises with hostile ones mixed in (errors carrying U+0000 and lone surrogates, messages that
// are objects, a completion the database refuses). Checks that unstorable text is made storable
// (U+FFFD), the same way on both backends; that a refused outcome fails its promise alone with
// OUTCOME_NOT_STORABLE; that every other promise completes; that no worker stops (each runs
// healthy work after the last hostile promise settled, and stops gracefully); and that
// throughput never falls to zero.
import { createEngine } from '../../src/index.js';
import { freshDatabase, refusePoisonTrigger, type CampaignBackend } from './campaign-database.js';
import { engineErrors, readLog, sleep, startCampaignProcess, stopCampaignProcess, sumCounts, type CampaignProcess } from './campaign-process.js';
import { HOSTILE_RETRIES, poisonCases } from './poison-cases.js';

export interface PoisonOptions {
  backend: CampaignBackend;
  /** Worker processes on the database. @defaultValue 3 */
  workers?: number;
  /** Handler slots per worker. @defaultValue 8 */
  concurrency?: number;
  /** How long hostile promises are fed in, after `warmupMs` of healthy work alone, s. */
  seconds: number;
  /** Healthy promises enqueued per second. */
  rate: number;
  /** One hostile promise per this many healthy ones; 0: none (a control run of the same stream). @defaultValue 10 */
  hostileEvery?: number;
  /** Healthy work alone before the first hostile promise, ms. @defaultValue 2_000 */
  warmupMs?: number;
  /** Healthy work fed after the last hostile promise settled, ms: a worker that stopped shows as one that ran none of it. @defaultValue 3_000 */
  tailMs?: number;
  keep?: boolean;
  log?: (line: string) => void;
}

export interface PoisonReport {
  backend: string;
  workers: number;
  healthy: number;
  hostile: number;
  /** Healthy promises not completed (or completed without their handler's end logged). */
  lost: number;
  /** Healthy promises that failed: a hostile outcome took a batch-mate down. */
  healthyFailed: number;
  duplicatedCompletions: number;
  stuck: number;
  /** Hostile promises whose stored outcome is not the expected one. */
  wrongOutcomes: number;
  /** Workers that stopped working (ran no healthy handler after the last hostile promise settled, or died). */
  workersStopped: number;
  /** Workers whose `stop()` did not return within 15 s of SIGTERM. */
  workersNotStopping: number;
  /** Hostile handler runs per worker: every worker met poison. */
  hostileRunsPerWorker: string;
  /** Healthy completions per second before the first hostile promise (median of 1-s windows). */
  ratePerSecondBefore: number;
  /** Healthy completions per second while hostile promises ran: median and lowest 1-s window. */
  ratePerSecondDuring: number;
  lowestSecondDuring: number;
  /** The longest time one worker finished no handler while work was fed in, ms. */
  longestStallMs: number;
  /** Claims taken over from a live worker that renewed its lease too late (LEASE_LOST). */
  leaseLosses: number;
  /** Deadlocks the server detected in this database (PostgreSQL; 0 on SQLite). */
  deadlocks: number;
  seconds: number;
}

export interface PoisonResult {
  report: PoisonReport;
  /** What each kind of hostile promise left in the database (compared across backends). */
  outcomes: Record<string, string>;
  /** Why outcomes were wrong, at most a few. */
  problems: string[];
  /** Messages the workers' engines logged at level error or above, with counts. */
  engineErrors: Record<string, number>;
}

interface Row {
  id: number;
  type: string;
  status: string;
  attempts: number;
  error_code: string | null;
  error_message: string | null;
  result: string | null;
  completed_at: number | null;
}

const FINISHED = `status in ('completed', 'failed')`;

export async function poison(options: PoisonOptions): Promise<PoisonResult> {
  const say = options.log ?? (() => undefined);
  const workerCount = options.workers ?? 3;
  const concurrency = options.concurrency ?? 8;
  const hostileEvery = options.hostileEvery ?? 10;
  const began = Date.now();
  const db = await freshDatabase(options.backend, 'poison');
  const workers: CampaignProcess[] = [];
  let kept = false;
  try {
    // The producer enqueues only (never started): max attempts are stored from its task options.
    const producer = await createEngine({ database: db.url, changeCheckIntervalMs: 0, cleanupIntervalMs: 0 });
    producer.task('healthy', async () => undefined);
    producer.task('hostile', async () => undefined, { retries: HOSTILE_RETRIES });
    await db.exec(refusePoisonTrigger(db.backend));
    workers.push(
      ...(await Promise.all(
        Array.from({ length: workerCount }, (_, i) => startCampaignProcess('poison-worker.ts', db.dir, `poison-worker-${i}`, [db.url, String(concurrency), '2000'])),
      )),
    );
    say(`  poison on ${db.backend}: ${workerCount} workers started`);

    const healthy = new Set<number>();
    const hostile = new Map<number, number>();
    let feeding = true;
    let hostileOn = false;
    let n = 0;
    let nextCase = 0;
    let firstHostileAt = 0;
    // A steady stream, 10 batches a second, for as long as `feeding`.
    const feed = (async () => {
      let owed = 0;
      while (feeding) {
        const tick = Date.now();
        owed += options.rate / 10;
        const items: Array<{ type: string; payload: Record<string, unknown> }> = [];
        for (; owed >= 1; owed--) {
          items.push({ type: 'healthy', payload: { n: n++, ms: 2 + Math.floor(Math.random() * 10) } });
          if (hostileOn && hostileEvery > 0 && n % hostileEvery === 0) {
            const index = nextCase++ % poisonCases.length;
            items.push({ type: 'hostile', payload: { index, ...poisonCases[index]!.payload } });
          }
        }
        if (hostileOn && firstHostileAt === 0) firstHostileAt = Date.now();
        const ids = await producer.enqueueMany(items);
        ids.forEach((id, i) => {
          const item = items[i]!;
          if (item.type === 'healthy') healthy.add(Number(id));
          else hostile.set(Number(id), item.payload.index as number);
        });
        await sleep(Math.max(0, 100 - (Date.now() - tick)));
      }
    })();
    await sleep(options.warmupMs ?? 2_000);
    hostileOn = true;
    await sleep(options.seconds * 1_000);
    hostileOn = false;
    const hostileOffAt = Date.now();
    // Healthy work goes on until every hostile promise settled (retries included), and `tailMs` more.
    const hostileIds = () => [...hostile.keys()].join(',') || '0';
    const deadline = Date.now() + 60_000;
    for (;;) {
      const [left] = await db.rows<{ n: number }>(`select count(*) as n from promises where id in (${hostileIds()}) and not ${FINISHED}`);
      if (Number(left!.n) === 0) break;
      if (Date.now() > deadline) {
        // Reported as stuck (and the workers that stopped) below, with everything else measured.
        say(`  poison on ${db.backend}: ${left!.n} hostile promises unfinished after 60 s`);
        break;
      }
      await sleep(100);
    }
    const [settled] = await db.rows<{ t: number }>(`select max(completed_at) as t from promises where id in (${hostileIds()})`);
    // (A control run without hostile promises: the window they would have had.)
    const lastHostileSettled = hostile.size > 0 ? Number(settled!.t) : hostileOffAt;
    await sleep(options.tailMs ?? 3_000);
    feeding = false;
    await feed;
    const feedEnded = Date.now();
    // A burst at the end, larger than one worker's slots: every worker still working takes some.
    const burst = await producer.enqueueMany(Array.from({ length: workerCount * concurrency * 4 }, () => ({ type: 'healthy', payload: { n: n++, ms: 30 } })));
    for (const id of burst) healthy.add(Number(id));
    await producer.stop();
    for (const started = Date.now(); ; ) {
      const [left] = await db.rows<{ n: number }>(`select count(*) as n from promises where not ${FINISHED}`);
      if (Number(left!.n) === 0) break;
      if (Date.now() - started > 60_000) break;
      await sleep(100);
    }

    const alive = workers.map((worker) => worker.alive());
    const stops = await Promise.all(workers.map((worker) => stopCampaignProcess(worker, 15_000)));
    const logs = workers.map((worker) => readLog(worker.log));
    const rows = await db.rows<Row>('select id, type, status, attempts, error_code, error_message, result, completed_at from promises');
    const byId = new Map(rows.map((row) => [Number(row.id), row]));
    // Lost leases (a worker too slow to renew them) are counted apart: they add attempts.
    const leaseLosses = new Map<number, number>();
    for (const line of await db.rows<{ promise_id: number; n: number }>(`select promise_id, count(*) as n from promise_history where event = 'LEASE_LOST' group by promise_id`)) {
      leaseLosses.set(Number(line.promise_id), Number(line.n));
    }
    const deadlocks = db.backend === 'PostgreSQL' ? Number((await db.rows<{ n: number }>('select deadlocks as n from pg_stat_database where datname = current_database()'))[0]!.n) : 0;

    // Healthy: every one completed, its handler's end logged for the attempt that committed, committed once.
    const ends = new Map<string, number>();
    const commits = new Map<number, number>();
    for (const entry of logs.flat()) {
      if (entry.event === 'end') ends.set(`${entry.id}:${entry.attempt}`, (ends.get(`${entry.id}:${entry.attempt}`) ?? 0) + 1);
      if (entry.event === 'commit') commits.set(entry.id, (commits.get(entry.id) ?? 0) + 1);
    }
    let lost = 0;
    let healthyFailed = 0;
    for (const id of healthy) {
      const row = byId.get(id);
      if (row?.status === 'failed') healthyFailed++;
      else if (row?.status !== 'completed' || !ends.has(`${id}:${row.attempts}`)) lost++;
    }
    const duplicatedCompletions =
      [...commits.values()].filter((count) => count > 1).length +
      rows.filter((row) => row.status === 'completed' && (ends.get(`${row.id}:${row.attempts}`) ?? 0) > 1).length;
    const stuck = rows.filter((row) => row.status !== 'completed' && row.status !== 'failed').length;

    // Hostile: what each left in the database, against what it must be.
    const problems: string[] = [];
    const outcomes: Record<string, string> = {};
    let wrongOutcomes = 0;
    for (const [id, index] of hostile) {
      const { kind, expected } = poisonCases[index]!;
      const row = byId.get(id);
      const seen: { status: string; attempts: number; result?: unknown; code?: string | null; message?: string | null } | undefined = row && {
        status: row.status,
        attempts: Number(row.attempts),
        ...(row.status === 'completed' ? { result: row.result === null ? null : JSON.parse(row.result) } : { code: row.error_code, message: row.error_message }),
      };
      // A lost attempt may or may not leave one more attempt (it counts, and a later failure sees it).
      const attemptsOk = !!seen && seen.attempts >= expected.attempts && seen.attempts <= expected.attempts + (leaseLosses.get(id) ?? 0);
      let ok = !!seen && seen.status === expected.status && attemptsOk;
      if (ok && expected.status === 'completed') ok = JSON.stringify(seen!.result) === JSON.stringify(expected.result);
      if (ok && expected.status === 'failed') {
        ok = seen!.code === expected.code && (typeof expected.message === 'string' ? seen!.message === expected.message : expected.message.test(String(seen!.message)));
      }
      if (!ok) {
        wrongOutcomes++;
        const expectedText = JSON.stringify(expected, (_, value: unknown) => (value instanceof RegExp ? String(value) : value));
        if (problems.length < 5) problems.push(`${kind} (promise ${id}): expected ${expectedText}, stored ${JSON.stringify(seen)}`);
      }
      // What was stored, the same on both backends; but the database's own words, and how many
      // attempts it took (lost leases add some).
      if (seen && !(kind in outcomes)) {
        const { attempts: _attempts, ...stored } = seen;
        outcomes[kind] = JSON.stringify(expected.status === 'failed' && typeof expected.message !== 'string' ? { ...stored, message: '(the database’s refusal)' } : stored);
      }
    }

    // Every worker met poison, and went on: healthy work after the last hostile promise settled.
    const hostileRuns = logs.map((entries) => entries.filter((entry) => entry.event === 'start' && entry.type === 'hostile').length);
    const workedAfter = logs.map((entries) => entries.some((entry) => entry.event === 'end' && entry.type === 'healthy' && entry.t > lastHostileSettled));
    const workersStopped = workers.filter((_, i) => !alive[i] || !workedAfter[i]).length;

    // The longest time a worker ran no handler to its end while work was fed in.
    const longestStallMs = Math.max(
      ...logs.map((entries) => {
        const ends = entries.filter((entry) => entry.event === 'end' && entry.t >= firstHostileAt && entry.t <= feedEnded).map((entry) => entry.t);
        let longest = 0;
        for (let i = 1; i < ends.length; i++) longest = Math.max(longest, ends[i]! - ends[i - 1]!);
        return ends.length === 0 ? feedEnded - firstHostileAt : longest;
      }),
    );

    // Throughput, in 1-s windows of healthy completions.
    const perSecond = (from: number, to: number) => {
      const windows = Array.from({ length: Math.max(1, Math.floor((to - from) / 1_000)) }, () => 0);
      for (const id of healthy) {
        const t = Number(byId.get(id)?.completed_at ?? 0);
        const w = Math.floor((t - from) / 1_000);
        if (t >= from && w < windows.length) windows[w]!++;
      }
      return windows;
    };
    const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;
    const before = perSecond(firstHostileAt - 1_000, firstHostileAt);
    const during = perSecond(firstHostileAt, Math.min(feedEnded, lastHostileSettled + 1_000));
    const report: PoisonReport = {
      backend: db.backend,
      workers: workerCount,
      healthy: healthy.size,
      hostile: hostile.size,
      lost,
      healthyFailed,
      duplicatedCompletions,
      stuck,
      wrongOutcomes,
      workersStopped,
      workersNotStopping: stops.filter((stop) => !stop.stopped).length,
      hostileRunsPerWorker: hostileRuns.join(' / '),
      ratePerSecondBefore: median(before),
      ratePerSecondDuring: median(during),
      lowestSecondDuring: Math.min(...during),
      longestStallMs,
      leaseLosses: [...leaseLosses.values()].reduce((a, b) => a + b, 0),
      deadlocks,
      seconds: Math.round((Date.now() - began) / 1_000),
    };
    kept = !!options.keep || poisonFailures(report).length > 0;
    if (kept) say(`  poison on ${db.backend}: kept ${db.dir}`);
    return { report, outcomes, problems, engineErrors: sumCounts(workers.map((worker) => engineErrors(worker.stderr))) };
  } finally {
    for (const worker of workers) if (worker.alive()) worker.child.kill('SIGKILL');
    await db.close(kept);
  }
}

/** The checks of the poison phase that failed, in words (empty: passed). */
export function poisonFailures(report: PoisonReport): string[] {
  const failures: string[] = [];
  if (report.lost > 0) failures.push(`${report.lost} healthy promises lost`);
  if (report.healthyFailed > 0) failures.push(`${report.healthyFailed} healthy promises failed beside hostile ones`);
  if (report.duplicatedCompletions > 0) failures.push(`${report.duplicatedCompletions} promises completed twice`);
  if (report.stuck > 0) failures.push(`${report.stuck} promises stuck`);
  if (report.wrongOutcomes > 0) failures.push(`${report.wrongOutcomes} hostile promises stored the wrong outcome`);
  if (report.workersStopped > 0) failures.push(`${report.workersStopped} workers stopped working`);
  if (report.workersNotStopping > 0) failures.push(`${report.workersNotStopping} workers did not stop on SIGTERM`);
  if (report.lowestSecondDuring === 0) failures.push('throughput fell to zero for at least one second');
  return failures;
}
