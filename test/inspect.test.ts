import http from 'node:http';
import { createWebSocketInspector } from '@statelyai/inspect';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { createEngine, createInspectionHub, type Engine, type EngineOptions, type InspectionFrame, type InspectionHub } from '../src/index.js';
import { tempDbPath } from './helpers/temp-db.js';
import { deferred, until } from './helpers/wait.js';
import { publishMachine, publishSteps } from './fixtures/dashboard-workflow.js';

const engines: Engine[] = [];
const closers: Array<() => unknown> = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
  for (const engine of engines.splice(0)) await engine.stop();
});

async function open(database: string, options: EngineOptions = {}) {
  const engine = await createEngine({ database, changeCheckIntervalMs: 10, cleanupIntervalMs: 0, ...options });
  engines.push(engine);
  return engine;
}

async function stop(engine: Engine) {
  engines.splice(engines.indexOf(engine), 1);
  await engine.stop();
}

/** A plain `ws` client that keeps every frame it receives. */
async function viewer(url: string, headers: Record<string, string> = {}) {
  const frames: Array<InspectionFrame & { snapshot: { status?: string; value?: unknown } }> = [];
  const socket = new WebSocket(url, { headers });
  socket.on('message', (data) => frames.push(JSON.parse(String(data)) as (typeof frames)[number]));
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
  });
  closers.push(() => socket.terminate());
  return {
    frames,
    of: (sessionId: string) => frames.filter((frame) => frame.sessionId === sessionId),
    /** `event -> state` for each event/snapshot pair of one actor. */
    moves: (sessionId: string) =>
      frames
        .filter((frame) => frame.sessionId === sessionId && frame.type === '@xstate.snapshot')
        .map((frame) => `${(frame as { event: { type: string } }).event.type} -> ${JSON.stringify(frame.snapshot.value)}`),
  };
}

async function hubOn(engine: Engine, database: string): Promise<{ hub: InspectionHub; url: string }> {
  const hub = await createInspectionHub(engine, { database });
  closers.push(() => hub.close());
  const { port } = await hub.listen({ port: 0 });
  return { hub, url: `ws://127.0.0.1:${port}` };
}

describe('the standalone dashboard hub (reading what another process runs)', () => {
  it('sends @xstate.snapshot for a running workflow, as the embedded hub does, and then its moves', async () => {
    const database = tempDbPath();
    const worker = await open(database);
    worker.workflow('publish', publishMachine, { steps: publishSteps });
    await worker.start();
    // The dashboard's engine is not started and runs nothing: it polls the database.
    const watcher = await open(database);
    watcher.workflow('publish', publishMachine, { steps: publishSteps });
    const hub = await createInspectionHub(watcher, { database, pollIntervalMs: 30 });
    closers.push(() => hub.close());
    const { port } = await hub.listen({ port: 0 });
    const live = await viewer(`ws://127.0.0.1:${port}`);
    const id = await worker.startWorkflow('publish', { title: 'Elsewhere' });
    await until(async () => (await worker.getWorkflow(id))?.value === 'awaitingApproval', 5_000, 'the worker to reach awaitingApproval');
    const session = hub.feed.sessionIdOf('workflow', id);
    await until(() => live.of(session).some((frame) => frame.type === '@xstate.snapshot'), 5_000, 'a snapshot frame: ' + JSON.stringify(live.of(session).map((f) => f.type)));
    const first = live.of(session).find((frame) => frame.type === '@xstate.snapshot')!;
    expect(first.snapshot).toMatchObject({ status: 'active', context: { title: 'Elsewhere' } });
    expect(live.of(session)[0]).toMatchObject({ type: '@xstate.actor', name: 'publish' });
    // A late joiner gets the actor and its latest snapshot too.
    const late = await viewer(`ws://127.0.0.1:${port}`);
    await until(() => late.of(session).some((frame) => frame.type === '@xstate.snapshot'), 2_000, 'the late joiner\'s snapshot');
    await worker.send(id, { type: 'APPROVE' });
    await until(() => live.moves(session).at(-1) === 'promised.sync -> {"checking":{"spelling":"open","legal":"open"}}', 5_000, 'the move read: ' + live.moves(session).join(', '));
  });
});

describe('the inspection hub', () => {
  it('tells a late viewer the latest state of every live actor, then every frame, also after a restart', async () => {
    const database = tempDbPath();
    const engine = await open(database);
    const release = deferred();
    engine.task('slow', async () => {
      await release.promise;
      return 'slow done';
    });
    engine.task('quick', async () => 'quick done');
    const { hub, url } = await hubOn(engine, database);
    engine.workflow('publish', publishMachine, { steps: publishSteps });
    await engine.start();

    const slow = await engine.enqueue('slow', {});
    const workflow = await engine.startWorkflow('publish', { title: 'Hello' });
    await until(async () => (await engine.get(slow))!.status === 'in_progress', 5_000, 'slow running');
    await until(async () => (await engine.getWorkflow(workflow))!.value === 'awaitingApproval', 5_000, 'awaiting approval');

    const late = await viewer(url);
    const slowSession = hub.feed.sessionIdOf('promise', slow);
    const workflowSession = hub.feed.sessionIdOf('workflow', workflow);
    expect(slowSession).toMatch(/^promised:[0-9a-f]{12}:promise:\d+$/);
    await until(() => late.of(workflowSession).length >= 2 && late.of(slowSession).length >= 2, 2_000, 'the welcome frames');
    const [slowActor] = late.of(slowSession);
    expect(slowActor).toMatchObject({ type: '@xstate.actor', name: 'slow', _version: '0.7.2', id: null, snapshot: { status: 'active', value: 'in_progress' } });
    expect(JSON.parse((slowActor as { definition: string }).definition)).toMatchObject({ id: 'promise', initial: 'waiting' });
    const [workflowActor, workflowLatest] = late.of(workflowSession);
    expect(workflowActor).toMatchObject({ type: '@xstate.actor', name: 'publish', sessionId: workflowSession, snapshot: { status: 'active', value: 'awaitingApproval', context: { title: 'Hello' } } });
    const definition = JSON.parse((workflowActor as { definition: string }).definition) as { states: Record<string, unknown> };
    expect(Object.keys(definition.states)).toEqual(['drafting', 'awaitingApproval', 'checking', 'publishing', 'published']);
    expect(workflowLatest).toMatchObject({ type: '@xstate.snapshot', snapshot: { value: 'awaitingApproval' } });
    // The finished draft step is not live; it may or may not still be kept, but never as live.

    // A promise's whole life, in order.
    const quick = await engine.enqueue('quick', { n: 1 });
    await engine.result(quick, { timeout: 5_000 });
    const quickSession = hub.feed.sessionIdOf('promise', quick);
    await until(() => late.moves(quickSession).length === 3, 2_000, 'quick frames');
    expect(late.of(quickSession).map((frame) => frame.type)).toEqual([
      '@xstate.actor', '@xstate.event', '@xstate.snapshot', '@xstate.event', '@xstate.snapshot', '@xstate.event', '@xstate.snapshot',
    ]);
    expect(late.of(quickSession)[0]!.snapshot).toMatchObject({ value: 'waiting' });
    expect(late.moves(quickSession)).toEqual(['DEPENDENCIES_RESOLVED -> "pending"', 'CLAIM -> "in_progress"', 'SUCCEED -> "completed"']);
    expect(late.of(quickSession).at(-1)!.snapshot.status).toBe('done');
    const event = late.of(quickSession)[1]!;
    expect(event).toMatchObject({ type: '@xstate.event', sessionId: quickSession, event: { type: 'DEPENDENCIES_RESOLVED' }, _version: '0.7.2' });
    expect(typeof (event as { id: string }).id).toBe('string');

    release.resolve();
    await engine.result(slow, { timeout: 5_000 });
    await until(() => late.moves(slowSession).includes('SUCCEED -> "completed"'), 2_000, 'slow completed');

    // A workflow's transitions.
    await engine.send(workflow, { type: 'APPROVE' });
    await until(() => late.moves(workflowSession).includes('APPROVE -> {"checking":{"spelling":"open","legal":"open"}}'), 2_000, 'APPROVE: ' + late.moves(workflowSession).join(', '));

    // A promise still unfinished at the restart: delayed far in the future, so it stays pending.
    const later = await engine.enqueue('quick', { n: 2 }, { delay: 3_600_000 });
    const laterSession = hub.feed.sessionIdOf('promise', later);

    // Restart: a new engine and hub on the same database; the waiting workflow and the pending
    // promise are rehydrated and keep their session ids.
    await hub.close();
    await stop(engine);
    const second = await open(database);
    second.task('slow', async () => 'x');
    second.task('quick', async () => 'x');
    const again = await hubOn(second, database);
    second.workflow('publish', publishMachine, { steps: publishSteps });
    await second.start();
    const after = await viewer(again.url);
    expect(again.hub.feed.sessionIdOf('workflow', workflow)).toBe(workflowSession);
    await until(() => after.of(workflowSession).length >= 1, 2_000, 'the rehydrated workflow');
    await until(() => after.of(laterSession).length >= 1, 2_000, 'the rehydrated promise');
    expect(again.hub.feed.sessionIdOf('promise', later)).toBe(laterSession);
    expect(after.of(laterSession)[0]).toMatchObject({ type: '@xstate.actor', name: 'quick', snapshot: { status: 'active', value: 'pending' } });
    expect(after.of(workflowSession)[0]).toMatchObject({ type: '@xstate.actor', snapshot: { value: { checking: { spelling: 'open', legal: 'open' } } } });
    expect((after.of(workflowSession)[0] as { definition?: string }).definition).toContain('"awaitingApproval"');
    await second.send(workflow, { type: 'SPELLING_OK' });
    await second.send(workflow, { type: 'LEGAL_OK' });
    await second.workflowResult(workflow, { timeout: 5_000 });
    await until(() => after.of(workflowSession).at(-1)?.snapshot.status === 'done', 2_000, 'workflow done: ' + after.moves(workflowSession).join(', '));
    expect(after.moves(workflowSession)).toEqual([
      // Rehydrated: its state as read, then every move.
      'promised.sync -> {"checking":{"spelling":"open","legal":"open"}}',
      'SPELLING_OK -> {"checking":{"spelling":"ok","legal":"open"}}',
      'LEGAL_OK -> "publishing"',
      'xstate.done.actor.0.publish.publishing -> "published"',
    ]);
  });

  it('draws the definitions of workflows registered before the hub was created', async () => {
    const database = tempDbPath();
    const engine = await open(database);
    engine.workflow('publish', publishMachine, { steps: publishSteps });
    await engine.start();
    const workflow = await engine.startWorkflow('publish', { title: 'Early' });
    await until(async () => (await engine.getWorkflow(workflow))!.value === 'awaitingApproval', 5_000, 'awaiting approval');
    // Only now the hub: it reads machines through engine.workflowMachine(name).
    const { hub, url } = await hubOn(engine, database);
    expect(hub.feed.definitionOf('publish')).toBeDefined();
    const late = await viewer(url);
    const session = hub.feed.sessionIdOf('workflow', workflow);
    await until(() => late.of(session).length >= 1, 2_000, 'the workflow actor');
    const actor = late.of(session)[0] as { type: string; definition?: string };
    expect(actor.type).toBe('@xstate.actor');
    expect(JSON.parse(actor.definition!)).toMatchObject({ id: 'publish', initial: 'drafting' });
    // And a workflow started after the hub, too.
    await engine.send(workflow, { type: 'APPROVE' });
    const second = await engine.startWorkflow('publish', { title: 'After' });
    const secondSession = hub.feed.sessionIdOf('workflow', second);
    await until(() => late.of(secondSession).length >= 1, 5_000, 'the second workflow actor');
    expect((late.of(secondSession)[0] as { definition?: string }).definition).toContain('"awaitingApproval"');
  });

  it('gives an @statelyai/inspect inspector passed to createEngine the same actors', async () => {
    const received: Array<Record<string, unknown>> = [];
    const server = http.createServer();
    const sockets = new WebSocketServer({ server });
    sockets.on('connection', (socket) => socket.on('message', (data) => received.push(JSON.parse(String(data)) as Record<string, unknown>)));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    closers.push(() => new Promise<void>((resolve) => { for (const client of sockets.clients) client.terminate(); sockets.close(); server.close(() => resolve()); }));
    const { port } = server.address() as { port: number };
    const inspector = createWebSocketInspector({ url: `ws://127.0.0.1:${port}` });
    closers.push(() => inspector.stop());

    const database = tempDbPath();
    const engine = await open(database, { inspect: inspector });
    engine.task('quick', async () => 'done');
    const { url } = await hubOn(engine, database);
    engine.workflow('publish', publishMachine, { steps: publishSteps });
    const hubView = await viewer(url);
    await engine.start();
    const id = await engine.enqueue('quick', {});
    await engine.result(id, { timeout: 5_000 });
    const workflow = await engine.startWorkflow('publish', { title: 'T' });
    await until(async () => (await engine.getWorkflow(workflow))!.value === 'awaitingApproval', 5_000, 'awaiting approval');

    const actors = (frames: Array<Record<string, unknown>>) => [...new Set(frames.filter((f) => f.type === '@xstate.actor').map((f) => f.sessionId as string))].sort();
    await until(() => actors(received).length === actors(hubView.frames as never).length && received.some((f) => f.type === '@xstate.snapshot' && (f.snapshot as { value?: unknown }).value === 'awaitingApproval'), 5_000, 'inspector frames');
    expect(actors(received)).toEqual(actors(hubView.frames as never));
    expect(actors(received)).toContain(`promised:${(await hubOnFingerprint(hubView))}:workflow:${workflow}`);
    const actor = received.find((f) => f.type === '@xstate.actor' && String(f.sessionId).endsWith(`:workflow:${workflow}`))!;
    expect(JSON.parse(actor.definition as string)).toMatchObject({ id: 'publish', initial: 'drafting' });
    const moves = received.filter((f) => f.type === '@xstate.snapshot' && String(f.sessionId).endsWith(`:promise:${id}`)).map((f) => (f.snapshot as { value: string }).value);
    expect(moves).toEqual(['pending', 'in_progress', 'completed']);
  });

  it('refuses to listen beyond loopback without a token, and refuses viewers without it', async () => {
    const database = tempDbPath();
    const engine = await open(database);
    const hub = await createInspectionHub(engine, { database });
    closers.push(() => hub.close());
    await expect(hub.listen({ host: '0.0.0.0', port: 0, token: '' })).rejects.toMatchObject({ code: 'INVALID_OPTION' });
    const token = 'a-long-enough-test-token';
    const { port } = await hub.listen({ host: '0.0.0.0', port: 0, token });
    // Connect through loopback only.
    const refused = await new Promise<number>((resolve) => {
      const socket = new WebSocket(`ws://127.0.0.1:${port}`);
      socket.on('unexpected-response', (_request, response) => resolve(response.statusCode ?? 0));
      socket.on('open', () => resolve(101));
      socket.on('error', () => undefined);
    });
    expect(refused).toBe(401);
    const allowed = await viewer(`ws://127.0.0.1:${port}`, { 'X-Promised-Token': token });
    expect(allowed.frames).toEqual([]);
  });
});

function hubOnFingerprint(view: { frames: InspectionFrame[] }): string {
  return view.frames[0]!.sessionId.split(':')[1]!;
}
