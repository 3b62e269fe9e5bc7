import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { fromPromise, setup } from 'xstate';
import { createEngine, type Engine } from '../src/index.js';
import { createTestEngine, type TestEngine } from '../src/testing/index.js';
import { runCli, tasksModule } from './fixtures/cli-run.js';
import { tempDir, tempDbPath } from './helpers/temp-db.js';

// Tests users write: immediate mode that a handler may re-enter, engine.idle(), and the test
// engine on a virtual clock.

const engines: Engine[] = [];
afterEach(async () => {
  for (const engine of engines.splice(0)) await engine.stop();
});

async function track<E extends Engine>(engine: Promise<E>): Promise<E> {
  const opened = await engine;
  engines.push(opened);
  return opened;
}

const approval = setup({ actors: { prepare: fromPromise(async () => undefined), notify: fromPromise(async () => undefined) } }).createMachine({
  id: 'approval',
  initial: 'preparing',
  states: {
    preparing: { invoke: { src: 'prepare', onDone: 'waiting' } },
    waiting: { on: { APPROVE: 'notifying' }, after: { 86_400_000: 'expired' } },
    notifying: { invoke: { src: 'notify', onDone: 'approved' } },
    approved: { type: 'final' },
    expired: { type: 'final' },
  },
  output: ({ context }) => context,
});

describe('immediate mode is re-entrant', () => {
  it('a handler that enqueues, fans out, starts a workflow and receives a message, nested three deep, is all run before the outer enqueue returns', async () => {
    const engine = await track(createEngine({ database: tempDbPath(), immediate: true, changeCheckIntervalMs: 0 }));
    const ran: string[] = [];
    const mail = engine.inbox('mail', async (message: { subject: string }) => void ran.push(`mail:${message.subject}`), { catchUpWindow: 60_000 });
    engine.workflow('approval', approval, { steps: { prepare: async () => void ran.push('prepare'), notify: async () => void ran.push('notify') } });
    engine.task('leaf', async (payload: { n: number }) => void ran.push(`leaf:${payload.n}`));
    engine.task('middle', async (_payload, ctx) => {
      ran.push(`middle:${ctx.id}`);
      await engine.enqueueMany([{ type: 'leaf', payload: { n: 1 } }, { type: 'leaf', payload: { n: 2 } }]);
      await engine.enqueueGraph({ a: { type: 'leaf', payload: { n: 3 } }, b: { type: 'leaf', payload: { n: 4 }, dependsOn: ['a'] } });
    });
    engine.task('root', async () => {
      ran.push('root');
      await engine.enqueue('middle');
      await engine.startWorkflow('approval', {});
      await mail.receive({ subject: 'hi' }, { id: 'm1' });
    });
    const id = await engine.enqueue('root');
    expect((await engine.get(id))!.status).toBe('completed');
    expect(ran[0]).toBe('root');
    expect(ran).toEqual(expect.arrayContaining(['leaf:1', 'leaf:2', 'leaf:3', 'leaf:4', 'prepare', 'mail:hi']));
    expect(ran.indexOf('leaf:3')).toBeLessThan(ran.indexOf('leaf:4'));
    const [workflow] = await engine.listWorkflows();
    expect(workflow!.value).toBe('waiting');
    await engine.send(workflow!.id, { type: 'APPROVE' });
    expect(await engine.workflowResult(workflow!.id, { timeout: 5_000 })).toEqual({});
    expect(ran.at(-1)).toBe('notify');
  });

  it('the CLI fallback (enqueue --tasks, no worker) prints the id, runs the fan-out once and exits 0', async () => {
    const dir = tempDir();
    const db = path.join(dir, 'promised.db');
    const file = path.join(dir, 'children.txt');
    const result = await runCli(['enqueue', 'fan-out', JSON.stringify({ children: 3, file }), '--tasks', tasksModule, '--db', db], { cwd: dir });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.trim()).toMatch(/^\d+$/);
    expect(fs.readFileSync(file, 'utf8').split('\n').filter(Boolean)).toHaveLength(3);
    const status = JSON.parse((await runCli(['status', result.stdout.trim(), '--json', '--db', db])).stdout);
    expect(status).toMatchObject({ status: 'completed', attempts: 1 });
  });
});

describe('engine.idle()', () => {
  it('resolves when everything runnable ran, fan-outs included, and not before', async () => {
    const engine = await track(createEngine({ database: tempDbPath(), changeCheckIntervalMs: 0 }));
    let leaves = 0;
    engine.task('leaf', async () => {
      await new Promise((resolve) => setTimeout(resolve, 20));
      leaves++;
    });
    engine.task('spread', async () => void (await engine.enqueueMany(Array.from({ length: 20 }, () => ({ type: 'leaf' })))));
    await engine.start();
    await engine.enqueue('spread');
    await engine.idle();
    expect(leaves).toBe(20);
    expect((await engine.stats()).pending + (await engine.stats()).in_progress).toBe(0);
  });
});

describe('createTestEngine: a virtual clock', () => {
  let t: TestEngine;
  afterEach(async () => {
    await t?.stop();
  });

  it('advance("25h") fires a workflow’s 24-hour after timer; mockStep replaces a step', async () => {
    const steps: string[] = [];
    t = await createTestEngine({ register: (engine) => engine.workflow('approval', approval, { steps: { prepare: async () => void steps.push('prepare'), notify: async () => void steps.push('notify') } }) });
    t.mockStep('approval', 'prepare', async () => void steps.push('mocked prepare'));
    const id = await t.startWorkflow('approval', {});
    await t.idle();
    expect((await t.getWorkflow(id))!.value).toBe('waiting');
    await t.advance('23h');
    expect((await t.getWorkflow(id))!.value).toBe('waiting');
    await t.advance('2h');
    expect((await t.getWorkflow(id))!).toMatchObject({ status: 'completed', value: 'expired' });
    expect(steps).toEqual(['mocked prepare']);
  });

  it('advance fires retries at their backoff, delays and cron runs in the span, in order', async () => {
    const log: string[] = [];
    t = await createTestEngine({
      register: (engine) => {
        engine.task('flaky', async (_payload, ctx) => {
          log.push(`flaky attempt ${ctx.attempt} at +${Math.round((t.clock.now() - start) / 60_000)}m`);
          if (ctx.attempt < 3) throw new Error('not yet');
        }, { retries: 3, retryDelay: 60_000, backoff: 'fixed' });
        engine.task('later', async () => void log.push(`later at +${Math.round((t.clock.now() - start) / 60_000)}m`));
        engine.periodic('hourly', '0 * * * *', async (ctx) => void log.push(`hourly ${ctx.scheduledAt.toISOString().slice(11, 16)}`));
      },
      startAt: Date.parse('2026-03-01T09:30:00Z'),
    });
    const start = t.clock.now();
    await t.enqueue('flaky');
    await t.enqueue('later', {}, { delay: 45 * 60_000 });
    await t.idle();
    await t.advance('2h');
    expect(log).toEqual([
      'flaky attempt 1 at +0m',
      // Fixed backoff with jitter: 30–60 s, so the retries land within a minute or two.
      expect.stringMatching(/^flaky attempt 2 at \+[01]m$/),
      expect.stringMatching(/^flaky attempt 3 at \+[0-2]m$/),
      'hourly 10:00',
      'later at +45m',
      'hourly 11:00',
    ].filter(Boolean) as unknown[]);
  });
});
