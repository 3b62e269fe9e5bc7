import { assign, fromPromise, setup } from 'xstate';
import { describe, expect, it } from 'vitest';
import { engineBackends } from './helpers/backends.js';
import { dumpDatabase } from './helpers/db-dump.js';
import { deferred, until } from './helpers/wait.js';
import { expectCode, openEngine, readRows } from './helpers/workflow-engines.js';

// Events with an outcome: each send is told whether its event was applied, kept for a later
// state, or dropped; a key makes repeated sends one event; kept events are bounded in time,
// visible, and can be discarded. And the double click never approves the next stage.

type Approvals = { approvedBy: string[] };
// Typed loosely on purpose: one action serves both machines.
const note: any = assign({ approvedBy: ({ context, event }: { context: Approvals; event: any }) => [...context.approvedBy, (event as { by?: string }).by ?? '?'] });

/** Two approval stages; stage 2 first needs its own READY (no step runs between the stages). */
const twoStages = setup({ types: { context: {} as Approvals } }).createMachine({
  id: 'twoStages',
  context: { approvedBy: [] },
  initial: 'stage1',
  states: {
    stage1: { on: { APPROVE: { target: 'stage2', actions: note } } },
    stage2: {
      initial: 'preparing',
      states: { preparing: { on: { READY: 'awaiting' } }, awaiting: { on: { APPROVE: { target: '#twoStages.done', actions: note } } } },
    },
    done: { type: 'final' },
  },
  output: ({ context }) => context.approvedBy,
});

/** A step before stage 1 (an early approval is kept), and a step between the stages (a double click must not be). */
const steppedStages = setup({
  types: { context: {} as Approvals },
  actors: { prepare: fromPromise(async () => null), notify: fromPromise(async () => null) },
}).createMachine({
  id: 'steppedStages',
  context: { approvedBy: [] },
  initial: 'preparing',
  states: {
    preparing: { invoke: { src: 'prepare', onDone: 'stage1' } },
    stage1: { on: { APPROVE: { target: 'notifying', actions: note } } },
    notifying: { invoke: { src: 'notify', onDone: 'stage2', onError: 'rejected' } },
    stage2: { on: { APPROVE: { target: 'done', actions: note } } },
    rejected: { on: { RETRY: 'notifying' } },
    done: { type: 'final' },
  },
  output: ({ context }) => context.approvedBy,
});

for (const backend of engineBackends) describe.skipIf(backend.skip)(`workflow events with an outcome on ${backend.name}`, () => {
  it('the double click: a second APPROVE after stage 1 moved, with no step running, is dropped and does not approve stage 2', async () => {
    const database = await backend.fresh();
    const engine = await openEngine(database);
    engine.workflow('twoStages', twoStages, { steps: {} });
    await engine.start();
    const id = await engine.startWorkflow('twoStages', {});
    expect(await engine.send(id, { type: 'APPROVE', by: 'first click' })).toMatchObject({ outcome: 'accepted', expiresAt: null });
    expect(await engine.send(id, { type: 'APPROVE', by: 'second click' })).toMatchObject({ outcome: 'dropped', expiresAt: null });
    expect((await engine.getWorkflow(id))!.keptEvents).toEqual([]);
    // Stage 2 starts awaiting its approval: the second click is not there to approve it.
    expect((await engine.send(id, { type: 'READY' })).outcome).toBe('accepted');
    const record = await engine.getWorkflow(id);
    expect(record).toMatchObject({ status: 'running', value: { stage2: 'awaiting' }, context: { approvedBy: ['first click'] } });
    expect((await engine.send(id, { type: 'APPROVE', by: 'stage 2 approver' })).outcome).toBe('accepted');
    expect(await engine.workflowResult(id, { timeout: 5_000 })).toEqual(['first click', 'stage 2 approver']);
  });

  it('a double click while the first click’s own step runs is dropped too (a repeat); an early approval is kept and applied', async () => {
    const database = await backend.fresh();
    const engine = await openEngine(database);
    const prepared = deferred();
    const notified = deferred();
    engine.workflow('stepped', steppedStages, { steps: { prepare: () => prepared.promise, notify: () => notified.promise } });
    await engine.start();
    const id = await engine.startWorkflow('stepped', {});
    // Sent while `prepare` runs, whose completion leads to stage 1: kept, listed, then applied.
    const early = await engine.send(id, { type: 'APPROVE', by: 'early' });
    expect(early.outcome).toBe('kept');
    expect(early.expiresAt!.getTime()).toBeGreaterThan(Date.now() + 50_000);
    expect((await engine.getWorkflow(id))!.keptEvents).toMatchObject([{ id: early.eventId, event: { type: 'APPROVE', by: 'early' } }]);
    // A double click of the early approval: kept as well (nothing was applied yet)...
    expect((await engine.send(id, { type: 'APPROVE', by: 'early, again' })).outcome).toBe('kept');
    prepared.resolve();
    await until(async () => (await engine.getWorkflow(id))!.value === 'notifying', 5_000, 'stage 1 approved by the kept event');
    // ... and discarded once the first one was applied: `notify` began with that approval, so
    // an APPROVE now is a repeat of it, not an approval of stage 2.
    expect((await engine.getWorkflow(id))!.keptEvents).toEqual([]);
    expect((await engine.send(id, { type: 'APPROVE', by: 'double click' })).outcome).toBe('dropped');
    notified.resolve();
    await until(async () => (await engine.getWorkflow(id))!.value === 'stage2', 5_000, 'stage 2');
    expect((await engine.getWorkflow(id))!.context).toEqual({ approvedBy: ['early'] });
    const rows = await readRows<{ type: string; outcome: string; applied: number; reason: string | null }>(
      database,
      'select type, outcome, case when applied_at is null then 0 else 1 end as applied, discard_reason as reason from workflow_events order by id',
    );
    expect(rows.map((row) => [row.outcome, Number(row.applied), row.reason])).toEqual([
      ['kept', 1, null],
      ['kept', 0, 'unreachable'],
      ['dropped', 0, null],
    ]);
  });

  it('a key makes repeated sends one event: the first one’s outcome, nothing written', async () => {
    const database = await backend.fresh();
    const engine = await openEngine(database);
    engine.workflow('twoStages', twoStages, { steps: {} });
    const id = await engine.startWorkflow('twoStages', {});
    const first = await engine.send(id, { type: 'APPROVE', by: 'ada' }, { key: 'approve:1' });
    expect(first.outcome).toBe('accepted');
    const before = await dumpDatabase(database);
    expect(await engine.send(id, { type: 'APPROVE', by: 'ada' }, { key: 'approve:1' })).toEqual(first);
    expect(await dumpDatabase(database)).toEqual(before);
    expect((await engine.getWorkflow(id))!.context).toEqual({ approvedBy: ['ada'] });
    // Dropped, with a key: its repeat is dropped too, even once stage 2 would accept it.
    const dropped = await engine.send(id, { type: 'APPROVE', by: 'bo' }, { key: 'approve:2' });
    expect(dropped.outcome).toBe('dropped');
    await engine.send(id, { type: 'READY' });
    expect(await engine.send(id, { type: 'APPROVE', by: 'bo' }, { key: 'approve:2' })).toEqual(dropped);
    expect((await engine.getWorkflow(id))!.value).toEqual({ stage2: 'awaiting' });
    // The same key on another workflow is another event.
    const other = await engine.startWorkflow('twoStages', {});
    expect((await engine.send(other, { type: 'APPROVE' }, { key: 'approve:1' })).outcome).toBe('accepted');
  });

  it('a kept event lapses after its TTL (per event type), and can be discarded', async () => {
    const database = await backend.fresh();
    const engine = await openEngine(database);
    const prepared = deferred();
    engine.workflow('stepped', steppedStages, { steps: { prepare: () => prepared.promise, notify: async () => null }, keptEvents: { ttl: 60_000, byType: { APPROVE: 150 } } });
    await engine.start();
    const id = await engine.startWorkflow('stepped', {});
    const lapsing = await engine.send(id, { type: 'APPROVE', by: 'lapses' });
    expect(lapsing.outcome).toBe('kept');
    expect((await engine.getWorkflow(id))!.keptEvents).toHaveLength(1);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect((await engine.getWorkflow(id))!.keptEvents).toEqual([]);
    expect(await engine.discardEvent(id, lapsing.eventId)).toBe(false);
    const discarded = await engine.send(id, { type: 'APPROVE', by: 'discarded' });
    expect(discarded.outcome).toBe('kept');
    expect(await engine.discardEvent(id, discarded.eventId)).toBe(true);
    expect(await engine.discardEvent(id, discarded.eventId)).toBe(false);
    prepared.resolve();
    await until(async () => (await engine.getWorkflow(id))!.value === 'stage1', 5_000, 'stage 1');
    expect((await engine.getWorkflow(id))!.context).toEqual({ approvedBy: [] });
    await expectCode('NOT_FOUND', () => engine.discardEvent('999', discarded.eventId));
    await expectCode('NOT_FOUND', () => engine.discardEvent(id, 'nope'));
  });

  it('a TTL of 0 keeps nothing; an event no state can reach is dropped', async () => {
    const database = await backend.fresh();
    const engine = await openEngine(database);
    engine.workflow('stepped', steppedStages, { steps: { prepare: () => new Promise(() => undefined), notify: async () => null }, keptEvents: { ttl: 0 } });
    await engine.start();
    const id = await engine.startWorkflow('stepped', {});
    expect((await engine.send(id, { type: 'APPROVE' })).outcome).toBe('dropped');
    expect((await engine.send(id, { type: 'RETRY' } as never)).outcome).toBe('dropped');
  });

  it('bad events, keys and TTLs are refused before anything is written', async () => {
    const database = await backend.fresh();
    const engine = await openEngine(database);
    engine.workflow('twoStages', twoStages, { steps: {} });
    await expectCode('INVALID_OPTION', () => engine.workflow('ttl', twoStages, { steps: {}, keptEvents: { ttl: -1 } }));
    await expectCode('INVALID_OPTION', () => engine.workflow('ttl', twoStages, { steps: {}, keptEvents: { byType: { APPROVE: 1.5 } } }));
    await expectCode('INVALID_OPTION', () => engine.workflow('ttl', twoStages, { steps: {}, keptEvents: 5 as never }));
    const id = await engine.startWorkflow('twoStages', {});
    const before = await dumpDatabase(database);
    await expectCode('INVALID_OPTION', () => engine.send(id, { type: 7 } as never));
    await expectCode('INVALID_OPTION', () => engine.send(id, { type: 'A\u0000B' }));
    await expectCode('INVALID_OPTION', () => engine.send(id, { type: 'x'.repeat(513) }));
    await expectCode('INVALID_OPTION', () => engine.send(id, { type: 'promised.cancel' }));
    await expectCode('INVALID_OPTION', () => engine.send(id, { type: 'xstate.done.actor.x' }));
    await expectCode('INVALID_OPTION', () => engine.send(id, { type: 'APPROVE' }, { key: '' }));
    await expectCode('INVALID_OPTION', () => engine.send(id, { type: 'APPROVE' }, { key: '\uDC00' }));
    await expectCode('NOT_FOUND', () => engine.send('424242', { type: 'APPROVE' }));
    await expectCode('NOT_FOUND', () => engine.send('not an id', { type: 'APPROVE' }));
    expect(await dumpDatabase(database)).toEqual(before);
  });
});
