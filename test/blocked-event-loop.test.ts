import { afterEach, describe, expect, it } from 'vitest';
import { createEngine } from '../src/index.js';
import { engineBackends } from './helpers/backends.js';
import { kill, spawnFixture } from './helpers/child.js';
import { until } from './helpers/wait.js';

// A handler that blocks the event loop past its lease: when nobody else took the claim over
// meanwhile, the attempt that finished is committed, not thrown away; and the late heartbeat is
// detected and said.

const LEASE_MS = 500;
const workers: Array<ReturnType<typeof spawnFixture>> = [];
afterEach(() => {
  for (const worker of workers.splice(0)) kill(worker.child, 'SIGKILL');
});

for (const backend of engineBackends) describe.skipIf(backend.skip)(`a blocked event loop on ${backend.name}`, () => {
  it('an attempt that blocked past its lease, with nobody else to take it, is committed; the late heartbeat is logged', async () => {
    const database = await backend.fresh();
    const producer = await createEngine({ database, changeCheckIntervalMs: 20 });
    producer.task('crunch', async () => undefined);
    try {
      const worker = spawnFixture('blocking-worker.ts', [database, String(LEASE_MS), String(3 * LEASE_MS)]);
      workers.push(worker);
      await worker.waitForLine('started', 30_000);
      const id = await producer.enqueue('crunch');
      expect(await producer.result(id, { timeout: 30_000 })).toBe('crunched');
      const record = (await producer.get(id))!;
      expect(record).toMatchObject({ status: 'completed', attempts: 1 });
      expect((await producer.history(id)).map((line) => line.event)).not.toContain('LEASE_LOST');
      // The warning is written by the heartbeat tick after the commit the producer saw: wait for
      // the line to cross the pipe rather than read stderr at once.
      const lateWarning = () =>
        worker
          .stderr()
          .split('\n')
          .filter(Boolean)
          .map((line) => JSON.parse(line) as { msg: string; blockedMs?: number; running?: string[] })
          .find((line) => /heartbeat ran late/.test(line.msg));
      await until(() => lateWarning() !== undefined, 10_000).catch(() => undefined);
      const warning = lateWarning();
      expect(warning, worker.stderr()).toBeDefined();
      expect(warning!.blockedMs).toBeGreaterThan(LEASE_MS);
      expect(warning!.running).toEqual(['crunch']);
    } finally {
      await producer.stop();
    }
  }, 60_000);
});
