import { assign, createMachine, fromPromise, setup } from 'xstate';
import { describe, expect, it } from 'vitest';
import { engineBackends } from './helpers/backends.js';
import { until } from './helpers/wait.js';
import { expectCode, openEngine, readRows, stopEngine } from './helpers/workflow-engines.js';

// Declarative migration: a running workflow stored by version 1 of a machine is moved onto
// version 2 by a map of states and a context upgrade, in one transaction, when the engine starts.

const placeholder = fromPromise(async () => null);

/** Version 1: work, then a long cooldown, then an approval. */
const v1 = setup({ types: { context: {} as { repo: string } }, actors: { work: placeholder, ship: placeholder } }).createMachine({
  id: 'release',
  context: { repo: 'api' },
  initial: 'working',
  states: {
    working: { invoke: { src: 'work', input: ({ context }) => ({ repo: context.repo }), onDone: 'cooldown' } },
    cooldown: { after: { 600_000: 'approval' } },
    approval: { on: { APPROVE: 'shipping' } },
    shipping: { invoke: { src: 'ship', onDone: 'shipped' } },
    shipped: { type: 'final' },
  },
});

/** Version 2: states renamed, a short delay, a context with reviewers, the output says who. */
const v2 = setup({ types: { context: {} as { repo: string; reviewers: string[] } }, actors: { work: placeholder, ship: placeholder } }).createMachine({
  id: 'release',
  context: { repo: 'api', reviewers: [] },
  initial: 'building',
  states: {
    building: { invoke: { src: 'work', input: ({ context }) => ({ repo: context.repo }), onDone: 'cooling' } },
    cooling: { after: { 100: 'awaitingApproval' } },
    awaitingApproval: { on: { APPROVE: { target: 'shipping', actions: assign({ reviewers: ({ context }) => [...context.reviewers, 'ada'] }) } } },
    shipping: { invoke: { src: 'ship', onDone: 'shipped' } },
    shipped: { type: 'final' },
  },
  output: ({ context }) => context,
});

const migrate = {
  states: { working: 'building', cooldown: 'cooling', approval: 'awaitingApproval' },
  context: (old: unknown) => ({ ...(old as { repo: string }), reviewers: [] as string[] }),
};

for (const backend of engineBackends) describe.skipIf(backend.skip)(`migrating running workflows on ${backend.name}`, () => {
  it('a v1 workflow waiting on its timer is moved onto v2 at start: state renamed, context upgraded, timers re-set', async () => {
    const database = await backend.fresh();
    const first = await openEngine(database);
    first.workflow('release', v1, { steps: { work: async () => 'built', ship: async () => 'shipped' } });
    await first.start();
    const id = await first.startWorkflow('release', {});
    await until(async () => (await first.getWorkflow(id))!.value === 'cooldown', 5_000, 'the v1 cooldown');
    const v1Version = (await first.getWorkflow(id))!.version;
    await stopEngine(first);

    const second = await openEngine(database);
    second.workflow('release', v2, { steps: { work: async () => 'built', ship: async () => 'shipped' }, migrate });
    const summary = await second.start();
    expect(summary.workflows).toEqual({ running: 1, versionMismatches: 0 });
    const migrated = await second.getWorkflow(id);
    expect(migrated).toMatchObject({ status: 'running', context: { repo: 'api', reviewers: [] } });
    expect(migrated!.version).not.toBe(v1Version);
    expect(['cooling', 'awaitingApproval']).toContain(migrated!.value);
    // The v1 ten-minute timer was dropped; v2's 100 ms one was set in its place.
    await until(async () => (await second.getWorkflow(id))!.value === 'awaitingApproval', 5_000, 'the v2 timer');
    expect((await second.listWorkflows({ awaiting: 'APPROVE' })).map((w) => w.id)).toEqual([id]);
    await second.send(id, { type: 'APPROVE' });
    expect(await second.workflowResult(id, { timeout: 5_000 })).toEqual({ repo: 'api', reviewers: ['ada'] });
    const history = await second.workflowHistory(id);
    expect(history.find((line) => line.event === 'promised.migrate')).toMatchObject({ from: 'cooldown', to: 'cooling' });

    // Started again, nothing is migrated twice.
    await stopEngine(second);
    const third = await openEngine(database);
    third.workflow('release', v2, { steps: { work: async () => 'built', ship: async () => 'shipped' }, migrate });
    await third.start();
    expect((await third.workflowHistory(id)).filter((line) => line.event === 'promised.migrate')).toHaveLength(1);
  });

  it('a step of a renamed state is handed over, not run twice', async () => {
    const database = await backend.fresh();
    const first = await openEngine(database);
    first.workflow('release', v1, { steps: { work: async () => 'built', ship: async () => 'shipped' } });
    const id = await first.startWorkflow('release', {});   // not started: the step waits unclaimed
    await stopEngine(first);

    const second = await openEngine(database);
    const runs: unknown[] = [];
    second.workflow('release', v2, { steps: { work: async (input) => (runs.push(input), 'built'), ship: async () => 'shipped' }, migrate });
    await second.start();
    await until(async () => (await second.getWorkflow(id))!.value === 'awaitingApproval', 5_000, 'the handed-over step to finish');
    expect(runs).toEqual([{ repo: 'api' }]);
    const steps = await readRows<{ invoke_id: string }>(database, 'select invoke_id from promises where workflow_id = $1', [Number(id)]);
    expect(steps.map((step) => step.invoke_id)).toEqual(['0.release.building']);
  });

  it('a state missing from the map, or a context the upgrade rejects, fails the workflow with WORKFLOW_VERSION_MISMATCH, its snapshot kept', async () => {
    const database = await backend.fresh();
    const first = await openEngine(database);
    first.workflow('release', v1, { steps: { work: async () => 'built', ship: async () => 'shipped' } });
    await first.start();
    const unmapped = await first.startWorkflow('release', {});
    await until(async () => (await first.getWorkflow(unmapped))!.value === 'cooldown', 5_000, 'cooldown');
    await stopEngine(first);
    const idle = await openEngine(database);
    idle.workflow('release', v1, { steps: { work: async () => 'built', ship: async () => 'shipped' } });
    const rejected = await idle.startWorkflow('release', {});   // stays in `working`: nobody runs its step
    await stopEngine(idle);
    const before = await readRows<{ id: number; snapshot: string }>(database, 'select id, snapshot from workflows order by id');

    // Its step may be claimed before the start migrates: it must not finish first (the migration
    // would then happen in that step's settlement, not at start).
    const second = await openEngine(database, { stopTimeoutMs: 100 });
    second.workflow('release', v2, {
      steps: { work: () => new Promise(() => undefined), ship: async () => 'shipped' },
      migrate: {
        states: { working: 'building', approval: 'awaitingApproval' },
        context: (old, from) => {
          if (from.value === 'working') throw new Error('no reviewers known');
          return old;
        },
      },
    });
    // `cooldown` is missing from the map; the upgrade rejects the context of the one in `working`.
    const summary = await second.start();
    expect(summary.workflows).toEqual({ running: 2, versionMismatches: 2 });
    for (const id of [unmapped, rejected]) expect(await second.getWorkflow(id)).toMatchObject({ status: 'failed', error: { code: 'WORKFLOW_VERSION_MISMATCH' } });
    expect((await second.getWorkflow(rejected))!.error!.message).toContain('no reviewers known');
    expect((await second.getWorkflow(unmapped))!.error!.message).toContain('cooldown');
    const after = await readRows<{ id: number; snapshot: string }>(database, 'select id, snapshot from workflows order by id');
    expect(after).toEqual(before);
  });

  it('the states map is checked against the new machine at registration; `from` limits which versions migrate', async () => {
    const database = await backend.fresh();
    const engine = await openEngine(database);
    await expectCode('INVALID_OPTION', () => engine.workflow('release', v2, { steps: { work: async () => 1, ship: async () => 1 }, migrate: { states: { cooldown: 'nowhere' } } }));
    await expectCode('INVALID_OPTION', () => engine.workflow('release', v2, { steps: { work: async () => 1, ship: async () => 1 }, migrate: { context: 'x' as never } }));
    await expectCode('INVALID_OPTION', () => engine.workflow('release', v2, { steps: { work: async () => 1, ship: async () => 1 }, migrate: { from: 'v1' as never } }));
    expect(engine.workflowNames).toEqual([]);

    const first = await openEngine(database);
    first.workflow('release', v1, { steps: { work: async () => 'built', ship: async () => 'shipped' } });
    await first.start();
    const id = await first.startWorkflow('release', {});
    await until(async () => (await first.getWorkflow(id))!.value === 'cooldown', 5_000, 'cooldown');
    await stopEngine(first);
    const second = await openEngine(database);
    second.workflow('release', createMachine({ id: 'release', initial: 'cooldown', states: { cooldown: { on: { GO: 'done' } }, done: { type: 'final' } } }), {
      steps: {},
      migrate: { states: { cooldown: 'done' }, from: ['some-other-version'] },
    });
    await second.start();
    // Not migrated (its version is not in `from`): the compatibility check let it continue as it was.
    expect(await second.getWorkflow(id)).toMatchObject({ status: 'running', value: 'cooldown' });
  });
});
