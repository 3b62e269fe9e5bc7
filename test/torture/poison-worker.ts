// A worker of the poison phase: runs `healthy` promises and the `hostile` ones of poison-cases.ts
// beside them, logging each handler's start and end and each commit of its own (one JSON object
// a line, its own file), until SIGTERM stops it gracefully.
//
//   node --import tsx test/torture/poison-worker.ts <log> <database> <concurrency> <leaseMs>
import fs from 'node:fs';
import { createEngine } from '../../src/index.js';
import { HOSTILE_RETRIES, poisonCases } from './poison-cases.js';

const [log, database, concurrency, leaseMs] = process.argv.slice(2) as [string, string, string, string];
const fd = fs.openSync(log, 'a');
const record = (entry: Record<string, unknown>) => fs.writeSync(fd, `${JSON.stringify({ ...entry, pid: process.pid, t: Date.now() })}\n`);

const engine = await createEngine({ database, concurrency: Number(concurrency), leaseMs: Number(leaseMs), changeCheckIntervalMs: 20, cleanupIntervalMs: 0, stopTimeoutMs: 5_000 });
engine.task('healthy', async (payload: { n: number; ms: number }, ctx) => {
  record({ event: 'start', type: 'healthy', id: Number(ctx.id), attempt: ctx.attempt });
  await new Promise((resolve) => setTimeout(resolve, payload.ms));
  record({ event: 'end', type: 'healthy', id: Number(ctx.id), attempt: ctx.attempt });
  return payload.n;
});
engine.task(
  'hostile',
  async (payload: { index: number; text?: string }, ctx) => {
    record({ event: 'start', type: 'hostile', id: Number(ctx.id), attempt: ctx.attempt });
    // Beside healthy handlers finishing in the same turn: the outcome rides in a batch with theirs.
    await new Promise((resolve) => setTimeout(resolve, 5));
    record({ event: 'end', type: 'hostile', id: Number(ctx.id), attempt: ctx.attempt });
    const { does } = poisonCases[payload.index]!;
    if ('throwsValue' in does) throw does.throwsValue;
    if ('throwsErrorWithMessage' in does) {
      const error = new Error('placeholder');
      (error as { message: unknown }).message = does.throwsErrorWithMessage;
      throw error;
    }
    return 'returns' in does ? does.returns : payload.text;
  },
  { retries: HOSTILE_RETRIES, retryDelay: 20 },
);
engine.on('transition', (transition) => {
  if (transition.event === 'SUCCEED') record({ event: 'commit', type: transition.type, id: Number(transition.id), attempt: transition.attempt });
});
engine.on('error', (error) => record({ event: 'error', id: 0, attempt: 0, message: error.message }));
await engine.start();
process.stdout.write(`started ${engine.owner}\n`);
process.once('SIGTERM', () => void engine.stop().then(() => process.exit(0)));
