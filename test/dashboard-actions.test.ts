// The dashboard's actions through its JSON API, the engine calls under them, and their CLI
// twins: send (only what the current state accepts is offered), cancel, pause and resume a
// workflow; retry a promise with an edited payload; retry every dead letter. Bad input is a 4xx
// with a code, before anything is written.
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { fromPromise, setup } from 'xstate';
import { z } from 'zod';
import { createEngine, defineTask, startDashboard, type Engine, type RunningDashboard } from '../src/index.js';
import { runCli } from './fixtures/cli-run.js';
import { publishMachine, publishSteps } from './fixtures/dashboard-workflow.js';
import { engineBackends } from './helpers/backends.js';
import { tempDbPath, tempDir } from './helpers/temp-db.js';

const engines: Engine[] = [];
const dashboards: RunningDashboard[] = [];
afterEach(async () => {
  for (const dashboard of dashboards.splice(0)) await dashboard.close();
  for (const engine of engines.splice(0)) await engine.stop();
});

const picky = defineTask({
  type: 'picky',
  schema: z.object({ ok: z.boolean() }),
  handler: async (payload) => {
    if (!payload.ok) throw new Error('not ok');
    return 'fine';
  },
  options: { retries: 0 },
});

async function setUp(database = tempDbPath()) {
  const engine = await createEngine({ database, cleanupIntervalMs: 0, changeCheckIntervalMs: 0 });
  engines.push(engine);
  engine.task(picky);
  engine.workflow('publish', publishMachine, { steps: publishSteps });
  const dashboard = await startDashboard(engine, { port: 0, database });
  dashboards.push(dashboard);
  await engine.start();
  const call = async (method: 'GET' | 'POST', apiPath: string, body?: unknown) => {
    const response = await fetch(`${dashboard.url}api/${apiPath}`, {
      method,
      headers: method === 'POST' ? { 'content-type': 'application/json', 'x-requested-with': 'promised' } : {},
      body: method === 'POST' ? (typeof body === 'string' ? body : JSON.stringify(body ?? {})) : undefined,
    });
    return { status: response.status, body: (await response.json()) as any };
  };
  return { engine, call };
}

async function failedPicky(engine: Engine) {
  const id = await engine.enqueue(picky, { ok: false });
  await expect(engine.result(id, { timeout: 5_000 })).rejects.toMatchObject({ code: 'PROMISE_FAILED' });
  return id;
}

for (const backend of engineBackends) describe.skipIf(backend.skip)(`dashboard actions on promises, on ${backend.name}`, () => {
  it('retries a promise with an edited payload, checked by its schema before anything is written', async () => {
    const { engine, call } = await setUp(await backend.fresh());
    const id = await failedPicky(engine);
    const refused = await call('POST', `promises/${id}/retry`, { payload: { ok: 'yes' } });
    expect(refused.status).toBe(400);
    expect(refused.body.error.code).toBe('INVALID_PAYLOAD');
    expect(await engine.get(id)).toMatchObject({ status: 'failed', payload: { ok: false } });
    expect((await call('POST', `promises/${id}/retry`, [1])).status).toBe(400);

    expect((await call('POST', `promises/${id}/retry`, { payload: { ok: true } })).status).toBe(200);
    expect(await engine.result(id, { timeout: 5_000 })).toBe('fine');
    expect(await engine.get(id)).toMatchObject({ status: 'completed', payload: { ok: true }, attempts: 1 });
    expect((await engine.history(id)).map((line) => line.event)).toContain('RETRY');
  });

  it('retries every dead letter, oldest first, and reports those refused', async () => {
    const { engine, call } = await setUp(await backend.fresh());
    engine.task('after', async () => 'ran');
    const lone = await failedPicky(engine);
    const { parent, child } = await engine.enqueueGraph({ parent: { task: picky, payload: { ok: false } }, child: { type: 'after', dependsOn: ['parent'] } });
    await expect(engine.result(child, { timeout: 5_000 })).rejects.toMatchObject({ code: 'PROMISE_FAILED' });
    expect((await engine.deadLetters.list()).map((letter) => letter.promiseId).sort()).toEqual([lone, parent, child].sort());
    // The parent comes back first and takes its child with it: the child's own retry is refused
    // (it waits again, or its parent failed again) and reported, not thrown.
    const answer = await call('POST', 'dead-letters/retry-all');
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({ retried: [lone, parent], skipped: [{ id: child, code: 'INVALID_TRANSITION' }] });
    expect((await engine.history(parent)).map((line) => line.event)).toContain('RETRY');
  });
});

describe('kept events in the dashboard', () => {
  it('lists an event kept for a later state and discards it', async () => {
    const database = tempDbPath();
    const engine = await createEngine({ database, cleanupIntervalMs: 0, changeCheckIntervalMs: 0 });
    engines.push(engine);
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const machine = setup({ actors: { work: fromPromise(async () => null) } }).createMachine({
      id: 'gated',
      initial: 'working',
      states: { working: { invoke: { src: 'work', onDone: 'waiting' } }, waiting: { on: { GO: 'done' } }, done: { type: 'final' } },
    });
    engine.workflow('gated', machine, { steps: { work: async () => gate } });
    const dashboard = await startDashboard(engine, { port: 0, database });
    dashboards.push(dashboard);
    await engine.start();
    const id = await engine.startWorkflow('gated', {});
    // GO is not accepted while the step runs, but the state after it takes GO: kept.
    const { outcome, eventId } = await engine.send(id, { type: 'GO' });
    expect(outcome).toBe('kept');
    const post = (apiPath: string) => fetch(`${dashboard.url}api/${apiPath}`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-requested-with': 'promised' }, body: '{}' }).then(async (response) => ({ status: response.status, body: (await response.json()) as any }));
    const shown = (await (await fetch(`${dashboard.url}api/workflows/${id}`)).json()) as { keptEvents: Array<{ id: string; event: { type: string } }> };
    expect(shown.keptEvents).toEqual([expect.objectContaining({ id: eventId, event: { type: 'GO' } })]);
    expect((await post(`workflows/${id}/events/${eventId}/discard`)).body).toEqual({ discarded: true });
    expect((await post(`workflows/${id}/events/${eventId}/discard`)).body).toEqual({ discarded: false });
    expect((await post(`workflows/${id}/events/${eventId}/forget`)).status).toBe(404);
    expect((await engine.getWorkflow(id))!.keptEvents).toEqual([]);
    release();
    // Discarded, so reaching `waiting` does not apply it.
    await expect.poll(async () => (await engine.getWorkflow(id))?.value, { timeout: 5_000 }).toBe('waiting');
  });
});

describe('dashboard actions on workflows', () => {
  it('offers the events the current state accepts, sends one, pauses, resumes and cancels', async () => {
    const { engine, call } = await setUp();
    const id = await engine.startWorkflow('publish', { title: 'Hello' });
    await expect.poll(async () => (await engine.getWorkflow(id))?.value, { timeout: 5_000 }).toBe('awaitingApproval');
    expect((await call('GET', `workflows/${id}`)).body.accepts).toEqual(['APPROVE']);
    expect((await call('GET', 'workflows?awaiting=APPROVE')).body.map((w: { id: string }) => w.id)).toEqual([id]);
    expect((await call('GET', 'workflows?awaiting=SPELLING_OK')).body).toEqual([]);

    const before = (await engine.workflowHistory(id)).length;
    for (const bad of [{}, { event: 'APPROVE' }, { event: { type: '' } }, { event: { type: 'APPROVE' }, key: 7 }]) {
      const refused = await call('POST', `workflows/${id}/send`, bad);
      expect(refused.status, JSON.stringify(bad)).toBe(400);
      expect(refused.body.error.code).toBe('INVALID_OPTION');
    }
    expect((await call('POST', `workflows/${id}/send`, '{"event":')).body.error.code).toBe('INVALID_JSON');
    expect(await engine.workflowHistory(id)).toHaveLength(before);

    expect((await call('POST', `workflows/${id}/send`, { event: { type: 'APPROVE' } })).body.outcome).toBe('accepted');
    const checking = (await call('GET', `workflows/${id}`)).body;
    expect(checking.value).toEqual({ checking: { spelling: 'open', legal: 'open' } });
    expect(checking.accepts.sort()).toEqual(['LEGAL_OK', 'SPELLING_OK']);

    expect((await call('POST', `workflows/${id}/pause`)).body).toEqual({ paused: true });
    expect((await engine.getWorkflow(id))!.pausedAt).toBeInstanceOf(Date);
    expect((await call('POST', `workflows/${id}/resume`)).body).toEqual({ resumed: true });
    expect((await engine.getWorkflow(id))!.pausedAt).toBeNull();

    // Time travel reads the context after each stored transition.
    const history = (await call('GET', `workflows/${id}/history`)).body;
    expect(history.map((line: { event: string }) => line.event)).toContain('APPROVE');
    const approved = history.find((line: { event: string }) => line.event === 'APPROVE');
    expect((await call('GET', `workflows/${id}/history/${approved.seq}`)).body).toMatchObject({ seq: approved.seq, to: { checking: { spelling: 'open', legal: 'open' } }, context: { title: 'Hello' } });
    expect((await call('GET', `workflows/${id}/history/999`)).status).toBe(404);
    expect((await call('GET', `workflows/${id}/history/0`)).status).toBe(400);

    expect((await call('POST', `workflows/${id}/cancel`)).body).toEqual({ outcome: 'cancelled' });
    expect(await engine.getWorkflow(id)).toMatchObject({ status: 'failed', error: { code: 'CANCELLED' } });
    expect((await call('GET', `workflows/${id}`)).body.accepts).toEqual([]);
    expect((await call('POST', `workflows/${id}/teleport`)).status).toBe(404);
  });
});

describe('the CLI twins (built output)', () => {
  it('promised retry ID --payload JSON and promised dead-letters --retry', async () => {
    const dir = tempDir();
    const db = path.join(dir, 'promised.db');
    const cli = (...args: string[]) => runCli([...args, '--db', db], { cwd: dir });
    const failed = (await cli('enqueue', 'fail', '{"n":1}', '--tasks', path.resolve(import.meta.dirname, 'fixtures/cli-tasks.mjs'))).stdout.trim();
    const bad = await cli('retry', failed, '--payload', '{nope');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/INVALID_JSON/);
    const retried = await cli('retry', failed, '--payload', '{"n":2}', '--json');
    expect(retried.stderr).toBe('');
    expect(JSON.parse(retried.stdout)).toEqual({ id: failed, status: 'pending', payload: { n: 2 } });
    await cli('cancel', failed);
    const second = (await cli('enqueue', 'fail', '--tasks', path.resolve(import.meta.dirname, 'fixtures/cli-tasks.mjs'))).stdout.trim();
    const all = await cli('dead-letters', '--retry', '--json');
    // The cancelled one is a dead letter too (CANCELLED), older than the second.
    expect(JSON.parse(all.stdout)).toEqual({ retried: [failed, second], skipped: [] });
    expect((await cli('dead-letters', '--retry', '--clear')).code).toBe(2);
  });
});

for (const backend of engineBackends) describe.skipIf(backend.skip)(`schedules, paused types and limited keys, on ${backend.name}`, () => {
  it('reports every schedule with its next run; trigger now creates a run; pause and resume its type', async () => {
    const database = await backend.fresh();
    const other = await createEngine({ database, cleanupIntervalMs: 0, changeCheckIntervalMs: 0 });
    engines.push(other);
    const runs: string[] = [];
    other.periodic('nightly', '0 3 * * *', async (ctx) => void runs.push(ctx.scheduledAt.toISOString()), { timezone: 'Europe/Berlin' });
    other.task('per-chat', async () => new Promise((resolve) => setTimeout(resolve, 300)), { concurrency: { limit: 1, key: (payload: { chat: string }) => payload.chat } });
    const dashboard = await startDashboard(other, { port: 0, database });
    dashboards.push(dashboard);
    await other.start();
    const api = (method: string, apiPath: string) =>
      fetch(`${dashboard.url}api/${apiPath}`, { method, headers: method === 'POST' ? { 'content-type': 'application/json', 'x-requested-with': 'promised' } : {}, body: method === 'POST' ? '{}' : undefined }).then(async (response) => ({ status: response.status, body: (await response.json()) as any }));

    const view = (await api('GET', 'schedules')).body;
    expect(view.schedules).toEqual([expect.objectContaining({ name: 'nightly', type: 'periodic:nightly', cron: '0 3 * * *', timezone: 'Europe/Berlin', paused: false })]);
    // Just registered: no due time has passed (its row's mark is when it began).
    expect(view.schedules[0].lastDueAt).toBeNull();
    const next = new Date(view.schedules[0].nextRunAt);
    expect(next.getTime()).toBeGreaterThan(Date.now());
    expect(next.getTime() - Date.now()).toBeLessThanOrEqual(24 * 3600_000 + 3600_000);

    const triggered = await api('POST', 'schedules/nightly/trigger');
    expect(triggered.status).toBe(200);
    await other.result(triggered.body.id, { timeout: 5_000 });
    expect(runs).toHaveLength(1);
    // Its own due times are untouched.
    expect((await api('GET', 'schedules')).body.schedules[0].nextRunAt).toBe(view.schedules[0].nextRunAt);

    expect((await api('POST', 'schedules/nightly/pause')).body).toEqual({ paused: 'periodic:nightly' });
    const paused = (await api('GET', 'schedules')).body;
    expect(paused.schedules[0].paused).toBe(true);
    expect(paused.pausedTypes).toEqual([{ type: 'periodic:nightly', pausedAt: expect.any(String) }]);
    expect((await api('POST', 'schedules/nightly/resume')).body).toEqual({ resumed: 'periodic:nightly' });
    expect((await api('GET', 'schedules')).body.pausedTypes).toEqual([]);

    expect((await api('POST', 'schedules/nope/trigger')).body.error.code).toBe('SCHEDULE_NOT_REGISTERED');
    expect((await api('POST', 'schedules/nope/pause')).status).toBe(404);
    expect((await api('POST', `types/${'x'.repeat(201)}/pause`)).status).toBe(400);

    // Two promises of one key under limit 1: one runs, the other is held.
    const first = await other.enqueue('per-chat', { chat: 'c1' });
    const second = await other.enqueue('per-chat', { chat: 'c1' });
    await expect.poll(async () => (await api('GET', 'schedules')).body.limitedKeys, { timeout: 5_000 }).toEqual([{ type: 'per-chat', key: 'c1', running: 1, pending: 1, limit: 1, held: true }]);
    await other.result(second, { timeout: 5_000 });
    await other.result(first, { timeout: 5_000 });
    expect((await api('GET', 'schedules')).body.limitedKeys).toEqual([]);
  });

  it('a paused schedule lets its due times pass without runs, and runs again once resumed', async () => {
    const { createTestEngine } = await import('../src/testing/index.js');
    const runs: string[] = [];
    const t = await createTestEngine({
      register: (engine) => void engine.periodic('minutely', '* * * * *', async (ctx) => void runs.push(ctx.scheduledAt.toISOString().slice(11, 16))),
      startAt: Date.parse('2026-03-01T09:30:30Z'),
    });
    try {
      await t.advance('2m');
      expect(runs).toEqual(['09:31', '09:32']);
      await t.pause('periodic:minutely');
      await t.advance('3m');
      await t.resume('periodic:minutely');
      await t.idle();
      // Nothing piled up while paused; the due times passed all the same.
      expect(runs).toEqual(['09:31', '09:32']);
      expect((await t.schedules())[0]).toMatchObject({ name: 'minutely', lastDueAt: new Date('2026-03-01T09:35:00Z'), paused: false });
      await t.advance('1m');
      expect(runs).toEqual(['09:31', '09:32', '09:36']);
    } finally {
      await t.stop();
    }
  });
});
