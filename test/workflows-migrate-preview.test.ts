import { createMachine, setup } from 'xstate';
import { describe, expect, it } from 'vitest';
import { dumpDatabase } from './helpers/db-dump.js';
import { engineBackends } from './helpers/backends.js';
import { expectCode, openEngine, stopEngine } from './helpers/workflow-engines.js';

// engine.previewWorkflowMigrations(): the dry run of start()'s migration, through the library.
// The outcomes the CLI test does not reach: a compatible change without `migrate` (resume), a
// name this process has not registered, a timer whose named delay is not a number.

const v1 = createMachine({ id: 'doc', initial: 'draft', states: { draft: { on: { SUBMIT: 'review' } }, review: { on: { OK: 'done' } }, done: { type: 'final' } } });
/** A compatible change: a new state, the old ones kept. */
const v1b = createMachine({ id: 'doc', initial: 'draft', states: { draft: { on: { SUBMIT: 'review', ARCHIVE: 'archived' } }, review: { on: { OK: 'done' } }, archived: { type: 'final' }, done: { type: 'final' } } });
/** `review` renamed to `checking`, whose timer's named delay is not a number. */
const v2 = setup({ delays: { patience: () => Number.NaN } }).createMachine({
  id: 'doc',
  initial: 'draft',
  states: { draft: { on: { SUBMIT: 'checking' } }, checking: { after: { patience: 'done' }, on: { OK: 'done' } }, done: { type: 'final' } },
});

for (const backend of engineBackends) describe.skipIf(backend.skip)(`previewing migrations on ${backend.name}`, () => {
  it('resume, unregistered and a timer that cannot be set, each as start() would decide, with nothing written', async () => {
    const database = await backend.fresh();
    const first = await openEngine(database);
    first.workflow('doc', v1, { steps: {} }).workflow('memo', v1, { steps: {} });
    const drafting = await first.startWorkflow('doc', {});
    const reviewing = await first.startWorkflow('doc', {});
    await first.send(reviewing, { type: 'SUBMIT' });
    const memo = await first.startWorkflow('memo', {});
    await stopEngine(first);
    const before = await dumpDatabase(database);

    const compatible = await openEngine(database);
    compatible.workflow('doc', v1b, { steps: {} });
    const previews = await compatible.previewWorkflowMigrations();
    expect(previews.map((preview) => [preview.id, preview.outcome, preview.to])).toEqual(
      expect.arrayContaining([
        [drafting, 'resume', 'draft'],
        [reviewing, 'resume', 'review'],
        [memo, 'unregistered', null],
      ]),
    );
    expect(previews).toHaveLength(3);
    expect(await compatible.previewWorkflowMigrations({ name: 'memo' })).toMatchObject([{ id: memo, outcome: 'unregistered', toVersion: null }]);
    await expectCode('INVALID_OPTION', () => compatible.previewWorkflowMigrations({ name: '' }));
    await stopEngine(compatible);

    const renamed = await openEngine(database);
    renamed.workflow('doc', v2, { steps: {}, migrate: { states: { review: 'checking' } } });
    const byId = Object.fromEntries((await renamed.previewWorkflowMigrations({ name: 'doc' })).map((preview) => [preview.id, preview]));
    expect(byId[drafting]).toMatchObject({ outcome: 'migrate', from: 'draft', to: 'draft', context: 'unchanged' });
    expect(byId[reviewing]).toMatchObject({ outcome: 'fail', from: 'review', to: null, context: 'unchanged', error: { code: 'WORKFLOW_VERSION_MISMATCH', stage: 'timers' } });
    expect(await dumpDatabase(database)).toEqual(before);

    // And start() agrees.
    await renamed.start();
    expect(await renamed.getWorkflow(drafting)).toMatchObject({ status: 'running', value: 'draft' });
    expect(await renamed.getWorkflow(reviewing)).toMatchObject({ status: 'failed', error: { code: 'WORKFLOW_VERSION_MISMATCH', message: expect.stringContaining(byId[reviewing]!.error!.message) } });
  });
});
