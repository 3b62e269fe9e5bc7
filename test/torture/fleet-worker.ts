// A worker of the saturated fleet: runs `fleet` promises (each sleeps `ms`) until it is killed or
// stopped, logging each handler's start and end, and each completion it committed, to its own
// file (one JSON object a line, written synchronously: a SIGKILL loses no line already written).
//
//   node --import tsx test/torture/fleet-worker.ts <log> <database> <leaseMs> <concurrency>
import fs from 'node:fs';
import { createEngine } from '../../src/index.js';

const [log, database, leaseMs, concurrency] = process.argv.slice(2) as [string, string, string, string];
const fd = fs.openSync(log, 'a');
const record = (entry: Record<string, unknown>) => fs.writeSync(fd, `${JSON.stringify({ ...entry, pid: process.pid, t: Date.now() })}\n`);

const engine = await createEngine({ database, concurrency: Number(concurrency), leaseMs: Number(leaseMs), changeCheckIntervalMs: 20, cleanupIntervalMs: 0, stopTimeoutMs: 5_000 });
engine.task(
  'fleet',
  async (payload: { ms: number }, ctx) => {
    record({ event: 'start', id: Number(ctx.id), attempt: ctx.attempt });
    await new Promise((resolve) => setTimeout(resolve, payload.ms));
    record({ event: 'end', id: Number(ctx.id), attempt: ctx.attempt });
    return null;
  },
  // A claim taken back from a dead worker runs again at once: the drain is not slowed by backoff.
  { retryDelay: 0 },
);
engine.on('transition', (transition) => {
  if (transition.event === 'SUCCEED') record({ event: 'commit', id: Number(transition.id), attempt: 0 });
});
engine.on('error', (error) => record({ event: 'error', id: 0, attempt: 0, message: error.message }));
await engine.start();
process.stdout.write(`started ${engine.owner}\n`);
process.once('SIGTERM', () => void engine.stop().then(() => process.exit(0)));
