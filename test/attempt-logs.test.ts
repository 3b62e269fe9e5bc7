// A failed attempt is one line at `warn` (its code and message as fields, no stack), and its stack
// is at `debug`: a test run or a worker log at the default level is not flooded with stacks.
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { createEngine, type Engine } from '../src/index.js';
import { tempDbPath } from './helpers/temp-db.js';

let engine: Engine | undefined;
afterEach(async () => {
  await engine?.stop();
  engine = undefined;
});

async function failTwice(level: 'warn' | 'debug') {
  const lines: Array<Record<string, unknown>> = [];
  const logger = pino({ level }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  engine = await createEngine({ database: tempDbPath(), logger, changeCheckIntervalMs: 0, cleanupIntervalMs: 0 });
  engine.task('flaky', async () => {
    throw new Error('boom');
  }, { retries: 1, retryDelay: 0 });
  await engine.start();
  const id = await engine.enqueue('flaky');
  await expect(engine.result(id, { timeout: 10_000 })).rejects.toMatchObject({ code: 'PROMISE_FAILED' });
  return { id, attempts: lines.filter((line) => typeof line.msg === 'string' && line.msg.startsWith('attempt failed')) };
}

describe('failed attempts in the log', () => {
  it('at warn: one line per attempt, with code and message, without the stack', async () => {
    const { id, attempts } = await failTwice('warn');
    expect(attempts).toHaveLength(2);
    for (const [index, line] of attempts.entries()) {
      expect(line).toMatchObject({ level: 40, msg: 'attempt failed', code: 'HANDLER_ERROR', message: 'boom', promiseId: Number(id), type: 'flaky', attempt: index + 1 });
      expect(JSON.stringify(line)).not.toMatch(/stack|at .*\.ts:\d+/);
    }
  });

  it('at debug: the stack of each attempt as well', async () => {
    const { attempts } = await failTwice('debug');
    const stacks = attempts.filter((line) => line.level === 20);
    expect(stacks).toHaveLength(2);
    expect(stacks[0]).toMatchObject({ err: { message: 'boom', stack: expect.stringContaining('Error: boom') } });
  });
});
