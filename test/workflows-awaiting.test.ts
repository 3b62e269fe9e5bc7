import { createMachine } from 'xstate';
import { describe, expect, it } from 'vitest';
import { engineBackends, executeSql } from './helpers/backends.js';
import { expectCode, openEngine, readRows, stopEngine } from './helpers/workflow-engines.js';

// "What is it waiting for?": the running workflows whose current state accepts an event,
// answered from an index written with each transition.

const approvals = createMachine({
  id: 'approvals',
  initial: 'draft',
  states: {
    draft: { on: { SUBMIT: 'review' } },
    review: {
      type: 'parallel',
      states: {
        manager: { initial: 'waiting', states: { waiting: { on: { APPROVE: { target: 'done', guard: ({ event }) => (event as { by?: string }).by === 'manager' } } }, done: {} } },
        legal: { initial: 'waiting', states: { waiting: { on: { 'SIGN.*': 'done' } }, done: {} } },
      },
      on: { REJECT: 'rejected', FINISH: 'closed' },
    },
    rejected: { on: { '*': 'draft' } },
    closed: { type: 'final' },
  },
});

const ids = (list: Array<{ id: string }>) => list.map((workflow) => workflow.id).sort();

for (const backend of engineBackends) describe.skipIf(backend.skip)(`listWorkflows({ awaiting }) on ${backend.name}`, () => {
  it('lists the running workflows whose current state has a transition for the event, and follows each transition', async () => {
    const database = await backend.fresh();
    const engine = await openEngine(database);
    engine.workflow('approvals', approvals, { steps: {} });
    engine.workflow('other', createMachine({ id: 'other', initial: 'a', states: { a: { on: { APPROVE: 'b' } }, b: { type: 'final' } } }), { steps: {} });
    const draft = await engine.startWorkflow('approvals', {});
    const inReview = await engine.startWorkflow('approvals', {});
    const rejected = await engine.startWorkflow('approvals', {});
    const closed = await engine.startWorkflow('approvals', {});
    const other = await engine.startWorkflow('other', {});
    for (const id of [inReview, rejected, closed]) await engine.send(id, { type: 'SUBMIT' });
    await engine.send(rejected, { type: 'REJECT' });
    await engine.send(closed, { type: 'FINISH' });

    expect(ids(await engine.listWorkflows({ awaiting: 'SUBMIT' }))).toEqual(ids([{ id: draft }, { id: rejected }]));
    // A guarded transition counts (the guard needs the event's fields); so do wildcards.
    expect(ids(await engine.listWorkflows({ awaiting: 'APPROVE' }))).toEqual(ids([{ id: inReview }, { id: rejected }, { id: other }]));
    expect(ids(await engine.listWorkflows({ awaiting: 'APPROVE', name: 'approvals' }))).toEqual(ids([{ id: inReview }, { id: rejected }]));
    expect(ids(await engine.listWorkflows({ awaiting: 'SIGN.contract' }))).toEqual(ids([{ id: inReview }, { id: rejected }]));
    expect(await engine.listWorkflows({ awaiting: 'APPROVE', status: 'completed' })).toEqual([]);
    expect(await engine.listWorkflows({ awaiting: 'NOBODY.WAITS' }).then((list) => list.map((w) => w.id))).toEqual([rejected]);
    expect((await engine.listWorkflows({ awaiting: 'REJECT' })).map((w) => w.id)).toEqual([rejected, inReview]);

    // One region moves: the index follows within the transition.
    await engine.send(inReview, { type: 'APPROVE', by: 'manager' });
    expect(ids(await engine.listWorkflows({ awaiting: 'APPROVE', name: 'approvals' }))).toEqual([rejected]);
    expect((await engine.listWorkflows({ awaiting: 'SIGN.nda' })).map((w) => w.id)).toContain(inReview);
    await engine.send(other, { type: 'APPROVE' });
    expect(ids(await engine.listWorkflows({ awaiting: 'APPROVE' }))).toEqual([rejected]);
    await engine.cancelWorkflow(rejected);
    expect(await engine.listWorkflows({ awaiting: 'APPROVE' })).toEqual([]);
    await expectCode('INVALID_OPTION', () => engine.listWorkflows({ awaiting: '' }));
    await expectCode('INVALID_OPTION', () => engine.listWorkflows({ awaiting: 42 as never }));
  });

  it('the index of running workflows is rebuilt at start (rows written before it existed)', async () => {
    const database = await backend.fresh();
    const first = await openEngine(database);
    first.workflow('approvals', approvals, { steps: {} });
    const id = await first.startWorkflow('approvals', {});
    await stopEngine(first);
    await executeSql(database, 'delete from workflow_awaiting');
    const second = await openEngine(database);
    second.workflow('approvals', approvals, { steps: {} });
    expect(await second.listWorkflows({ awaiting: 'SUBMIT' })).toEqual([]);
    await second.start();
    expect((await second.listWorkflows({ awaiting: 'SUBMIT' })).map((w) => w.id)).toEqual([id]);
    expect(await readRows(database, 'select event_type from workflow_awaiting')).toEqual([{ event_type: 'SUBMIT' }]);
  });
});
