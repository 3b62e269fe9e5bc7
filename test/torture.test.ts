import { describe, expect, inject, it } from 'vitest';
import type { CampaignBackend } from './torture/campaign-database.js';
import { fleet, fleetFailures, type FleetResult } from './torture/fleet.js';
import { poison, poisonFailures, type PoisonResult } from './torture/poison.js';
import { poisonCases } from './torture/poison-cases.js';
import { torture } from './torture/torture.js';

// Shortened runs of each phase of `npm run torture` (which runs them full size): the same
// checks, fewer promises and kills, so this file stays well under a minute.

const adminUrl = inject('postgresAdminUrl');
const backends: Array<CampaignBackend & { skip: string | false }> = [
  { name: 'SQLite', skip: false },
  { name: 'PostgreSQL', adminUrl: adminUrl ?? '', skip: adminUrl ? false : inject('postgresSkipReason') },
];
for (const backend of backends) if (backend.skip) console.warn(`torture on ${backend.name} skipped: ${backend.skip}`);

/** `{ SQLite: pick(its result), PostgreSQL: … }`: a failing expectation names the backend. */
const byBackend = <R extends { report: { backend: string } }>(results: R[], pick: (result: R) => unknown) =>
  Object.fromEntries(results.map((result) => [result.report.backend, pick(result)]));

describe('torture (shortened; `npm run torture` runs the full campaign)', () => {
  it('chains, fan-out/fan-in graphs, workflows and a cron schedule survive repeated SIGKILLs', async () => {
    const report = await torture({ promises: 600, workflows: 3, kills: 6 });
    console.log(`torture (short): ${JSON.stringify(report)}`);
    expect(report).toMatchObject({ lost: 0, duplicatedCompletions: 0, stuck: 0, orderViolations: 0, workflowsCompleted: 3, promises: 600 });
    expect(report.workflowSteps).toBe(3 * 5);
    expect(report.cronRuns).toBeGreaterThan(0);
  }, 240_000);

  // Each phase on one backend after the other: at once, they would slow each other down (two cores).
  const running = backends.filter((backend) => !backend.skip);

  it(`poison outcomes on ${running.map((backend) => backend.name).join(' and ')}: made storable the same way, failing alone, stopping no worker and not the throughput`, async () => {
    const results: PoisonResult[] = [];
    for (const backend of running) results.push(await poison({ backend, workers: 2, seconds: 1.5, rate: 100, hostileEvery: 4, warmupMs: 800, tailMs: 1_000 }));
    for (const { report } of results) console.log(`poison on ${report.backend} (short): ${JSON.stringify(report)}`);
    expect(byBackend(results, (result) => result.problems)).toEqual(byBackend(results, () => []));
    expect(byBackend(results, (result) => poisonFailures(result.report))).toEqual(byBackend(results, () => []));
    // The same stored outcome for every kind of hostile promise, whatever the backend.
    for (const result of results.slice(1)) expect(result.outcomes).toEqual(results[0]!.outcomes);
    for (const { report } of results) {
      expect(report.hostile).toBeGreaterThanOrEqual(poisonCases.length);
      expect(report.healthy).toBeGreaterThan(100);
    }
  }, 120_000);

  it(`a saturated fleet of 4 workers on ${running.map((backend) => backend.name).join(' and ')} loses one to SIGKILL: nothing lost, duplicated or stuck; its claims back within two leases`, async () => {
    const results: FleetResult[] = [];
    for (const backend of running) results.push(await fleet({ backend, workers: 4, concurrency: 4, leaseMs: 1_000, kills: 1, backlog: 400 }));
    for (const { report } of results) console.log(`fleet on ${report.backend} (short): ${JSON.stringify(report)}`);
    expect(byBackend(results, (result) => fleetFailures(result.report, 1))).toEqual(byBackend(results, () => []));
    for (const { report } of results) {
      expect(report.claimsHeld).toBeGreaterThan(0);
      expect(report.slowestRecoveryMs).toBeLessThanOrEqual(2 * report.leaseMs);
    }
  }, 120_000);
});
