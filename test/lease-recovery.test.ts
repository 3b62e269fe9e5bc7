import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createEngine } from '../src/index.js';
import { engineBackends } from './helpers/backends.js';
import { kill, spawnFixture } from './helpers/child.js';
import { tempDir } from './helpers/temp-db.js';
import { until } from './helpers/wait.js';

// A saturated fleet loses a worker to SIGKILL: the dead worker's claims must come back within
// about one lease of expiring, however busy the survivors are (lease recovery has a timer of its
// own, not one armed only when a claim pass leaves slots free).

const LEASE_MS = 1_000;
const children: Array<ReturnType<typeof spawnFixture>> = [];
afterEach(() => {
  for (const worker of children.splice(0)) kill(worker.child, 'SIGKILL');
});

for (const backend of engineBackends) describe.skipIf(backend.skip)(`lease recovery on ${backend.name}`, () => {
  it('a SIGKILLed worker’s claims are recovered within two leases while the survivors stay saturated', async () => {
    const database = await backend.fresh();
    const log = path.join(tempDir(), 'handlers.log');
    fs.writeFileSync(log, '');
    const producer = await createEngine({ database, changeCheckIntervalMs: 0 });
    producer.task('busy', async () => 'ok');
    // A steady backlog: 3 workers × 2 slots at 60 ms a promise take ~10 s for 1,000.
    await producer.enqueueMany(Array.from({ length: 1_000 }, () => ({ type: 'busy', payload: { ms: 60 } })));
    await producer.stop();

    const workers = [0, 1, 2].map(() => spawnFixture('busy-worker.ts', [database, log, String(LEASE_MS), '2']));
    children.push(...workers);
    await Promise.all(workers.map((worker) => until(() => worker.lines.some((line) => line.startsWith('started ')), 30_000, 'a worker to start')));
    const victim = workers[0]!;
    const victimOwner = victim.lines.find((line) => line.startsWith('started '))!.slice('started '.length);

    const reader = await createEngine({ database, changeCheckIntervalMs: 0 });
    try {
      const victimClaims = async () => {
        const running = await reader.list({ status: 'in_progress', limit: 10_000 });
        const rows = await Promise.all(running.map((record) => reader.store.getPromise(Number(record.id))));
        return rows.filter((row) => row?.lease_owner === victimOwner).map((row) => String(row!.id));
      };
      // Kill at a random instant while it holds claims.
      // Kill at a random instant while it holds claims: right after one of its handlers started
      // (the claim is committed, its outcome cannot be for 60 ms).
      await new Promise((resolve) => setTimeout(resolve, Math.floor(Math.random() * 500)));
      const startsSoFar = () => fs.readFileSync(log, 'utf8').split('\n').filter((line) => line.includes(`"pid":${victim.child.pid}`) && line.includes('"start"')).length;
      const before = startsSoFar();
      await until(() => startsSoFar() > before, 20_000, 'the victim to start a handler');
      victim.child.kill('SIGKILL');
      const killedAt = Date.now();
      await victim.exited;
      // What it held at its death: a dead process changes nothing more.
      const held = await victimClaims();
      expect(held.length, 'the victim held claims when it died').toBeGreaterThan(0);

      // Every claim it held is taken back (then run by a survivor) while the backlog is still long.
      await until(
        async () => (await Promise.all(held.map((id) => reader.get(id)))).every((record) => record!.status !== 'in_progress' || record!.attempts > 1),
        4 * LEASE_MS + 10_000,
        'the dead worker’s claims to be recovered',
      );
      const recoveredAfterMs = Date.now() - killedAt;
      const stats = await reader.stats();
      expect(stats.pending, 'the survivors were still saturated when the claims came back').toBeGreaterThan(100);
      expect(recoveredAfterMs).toBeLessThanOrEqual(2 * LEASE_MS + 1_000);
      for (const id of held) expect((await reader.history(id)).some((line) => line.event === 'LEASE_LOST')).toBe(true);
      console.info(`${backend.name}: ${held.length} claims of the killed worker recovered ${recoveredAfterMs} ms after the kill (lease ${LEASE_MS} ms), ${stats.pending} still pending`);
    } finally {
      await reader.stop();
    }
  }, 90_000);
});
