import { afterEach, describe, expect, it } from 'vitest';
import { createEngine, startDashboard, type Engine, type PromiseRecord, type RunningDashboard } from '../src/index.js';
import { engineBackends } from './helpers/backends.js';
import { tempDbPath } from './helpers/temp-db.js';

const engines: Engine[] = [];
const dashboards: RunningDashboard[] = [];
afterEach(async () => {
  for (const dashboard of dashboards.splice(0)) await dashboard.close();
  for (const engine of engines.splice(0)) await engine.stop();
});

async function setUp(database = tempDbPath()) {
  const engine = await createEngine({ database, cleanupIntervalMs: 0, changeCheckIntervalMs: 0 });
  engines.push(engine);
  return { engine, database };
}

async function get(url: string) {
  const response = await fetch(url);
  return { status: response.status, body: (await response.json()) as any };
}

for (const backend of engineBackends) describe.skipIf(backend.skip)(`engine.listPage on ${backend.name}`, () => {
  it('walks every promise newest first by cursor, each exactly once', async () => {
    const { engine } = await setUp(await backend.fresh());
    engine.task('odd', async () => null).task('even', async () => null);
    const ids = await engine.enqueueMany(Array.from({ length: 23 }, (_, i) => ({ type: i % 2 ? 'odd' : 'even', payload: { i } })));
    const seen: string[] = [];
    let before: string | undefined;
    let pages = 0;
    do {
      const page = await engine.listPage({ limit: 5, before });
      seen.push(...page.promises.map((record) => record.id));
      before = page.next ?? undefined;
      pages += 1;
    } while (before);
    expect(seen).toEqual([...ids].reverse());
    // 23 rows in pages of 5: four full pages, then three rows and no cursor.
    expect(pages).toBe(5);
  });

  it('filters by status, type, error code and a case-insensitive substring', async () => {
    const { engine } = await setUp(await backend.fresh());
    engine.task('ok', async () => 'fine');
    engine.task('boom', async () => {
      throw Object.assign(new Error('Upstream said NO to Order-7'), { code: 'UPSTREAM' });
    }, { retries: 0 });
    const good = await engine.enqueue('ok', { order: 'order-7' });
    const bad = await engine.enqueue('boom', { order: 'order-8' });
    const pending = await engine.enqueue('ok', { order: 'ORDER-9' }, { delay: 60_000 });
    await engine.start();
    await expect(engine.result(bad, { timeout: 5_000 })).rejects.toMatchObject({ code: 'PROMISE_FAILED' });
    await engine.result(good, { timeout: 5_000 });
    const ids = async (filter: Parameters<Engine['listPage']>[0]) => (await engine.listPage(filter)).promises.map((record: PromiseRecord) => record.id);
    expect(await ids({ status: 'failed' })).toEqual([bad]);
    expect(await ids({ type: 'ok' })).toEqual([pending, good]);
    expect(await ids({ status: 'pending', type: 'ok' })).toEqual([pending]);
    expect(await ids({ errorCode: 'HANDLER_ERROR' })).toEqual([bad]);
    expect(await ids({ search: 'order-9' })).toEqual([pending]);
    // The error message is searched too, in any case; `%` and `_` are literal.
    expect(await ids({ search: 'said no' })).toEqual([bad]);
    expect(await ids({ search: 'order_7' })).toEqual([]);
    const failed = (await engine.listPage({ status: 'failed' })).promises[0]!;
    expect(failed.error).toEqual({ code: 'HANDLER_ERROR', message: 'Upstream said NO to Order-7' });
    expect(failed.startedAt).toBeInstanceOf(Date);
  });

  it('refuses bad filters with INVALID_OPTION', async () => {
    const { engine } = await setUp(await backend.fresh());
    for (const filter of [{ status: 'done' }, { limit: 0 }, { limit: 5_000 }, { before: 'abc' }, { before: '-1' }, { type: 'x'.repeat(201) }, { search: '' as unknown as undefined, errorCode: '' }]) {
      await expect(engine.listPage(filter as never), JSON.stringify(filter)).rejects.toMatchObject({ code: 'INVALID_OPTION' });
    }
  });
});

describe('the list API', () => {
  it('pages by cursor, says 400 with a code to a bad filter, and links relations both ways', async () => {
    const { engine, database } = await setUp();
    engine.task('parent', async () => 'p');
    engine.task('child', async () => 'c');
    engine.task('notify', async () => 'sent');
    engine.task('deploy', async () => 'deployed', { onComplete: 'notify' });
    const graph = await engine.enqueueGraph({ a: { type: 'parent' }, b: { type: 'child', dependsOn: ['a'] }, c: { type: 'child', dependsOn: ['a'] } });
    const deploy = await engine.enqueue('deploy', {});
    const dashboard = await startDashboard(engine, { port: 0, database });
    dashboards.push(dashboard);
    await engine.start();
    await engine.result(deploy, { timeout: 5_000 });
    await engine.idle();
    const api = `${dashboard.url}api/`;

    const first = await get(`${api}promises?limit=2`);
    expect(first.status).toBe(200);
    expect(first.body.promises).toHaveLength(2);
    const second = await get(`${api}promises?limit=2&before=${first.body.next}`);
    expect(Number(second.body.promises[0].id)).toBeLessThan(Number(first.body.promises[1].id));

    for (const [query, option] of [['status=nope', 'status'], ['limit=abc', 'limit'], ['before=x1', 'before']]) {
      const refused = await get(`${api}promises?${query}`);
      expect(refused.status, query).toBe(400);
      expect(refused.body.error.code).toBe('INVALID_OPTION');
      expect(refused.body.error.message).toContain(option);
    }

    const parent = (await get(`${api}promises/${graph.a}`)).body.relations;
    expect(parent.dependents).toEqual([graph.b, graph.c]);
    expect((await get(`${api}promises/${graph.b}`)).body.relations.dependsOn).toEqual([graph.a]);
    const followUp = (await engine.listPage({ type: 'notify' })).promises[0]!;
    expect((await get(`${api}promises/${deploy}`)).body.relations.followUps).toEqual([{ id: followUp.id, type: 'notify', status: 'completed' }]);
    expect((await get(`${api}promises/${followUp.id}`)).body.relations.follows).toBe(deploy);
  });
});
