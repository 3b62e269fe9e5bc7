import { fromPromise, setup } from 'xstate';
import { describe, expect, it } from 'vitest';
import { engineBackends } from './helpers/backends.js';
import { dumpDatabase } from './helpers/db-dump.js';
import { countRows, expectCode, openEngine } from './helpers/workflow-engines.js';

// Idempotent starts: a retried request (a `POST /expenses` sent twice) starts one workflow.

const expense = setup({ types: { input: {} as { amount: number } }, actors: { book: fromPromise(async () => null) } }).createMachine({
  id: 'expense',
  context: ({ input }) => ({ amount: input.amount }),
  initial: 'review',
  states: { review: { on: { APPROVE: 'booking' } }, booking: { invoke: { src: 'book', onDone: 'done' } }, done: { type: 'final' } },
});

for (const backend of engineBackends) describe.skipIf(backend.skip)(`idempotent workflow start on ${backend.name}`, () => {
  it('the same key returns the same workflow and writes nothing', async () => {
    const database = await backend.fresh();
    const engine = await openEngine(database);
    engine.workflow('expense', expense, { steps: { book: async () => 'booked' } });
    const first = await engine.startWorkflow('expense', { amount: 12 }, { key: 'expense:7' });
    const before = await dumpDatabase(database);
    expect(await engine.startWorkflow('expense', { amount: 12 }, { key: 'expense:7' })).toBe(first);
    // The key names the workflow, whatever the input of the repeat.
    expect(await engine.startWorkflow('expense', { amount: 99 }, { key: 'expense:7' })).toBe(first);
    expect(await dumpDatabase(database)).toEqual(before);
    expect(await engine.getWorkflow(first)).toMatchObject({ key: 'expense:7', context: { amount: 12 } });
    const other = await engine.startWorkflow('expense', { amount: 12 }, { key: 'expense:8' });
    const unkeyed = await engine.startWorkflow('expense', { amount: 12 });
    expect(new Set([first, other, unkeyed]).size).toBe(3);
    expect(await countRows(database, 'workflows')).toBe(3);
  });

  it('concurrent starts with one key (two engines on the database) make one workflow', async () => {
    const database = await backend.fresh();
    const a = await openEngine(database);
    const b = await openEngine(database);
    for (const engine of [a, b]) engine.workflow('expense', expense, { steps: { book: async () => 'booked' } });
    const ids = await Promise.all(Array.from({ length: 8 }, (_, i) => (i % 2 ? a : b).startWorkflow('expense', { amount: i }, { key: 'race' })));
    expect(new Set(ids).size).toBe(1);
    expect(await countRows(database, 'workflows')).toBe(1);
  });

  it('a bad key, or a key taken by a workflow of another name, is refused before anything is written', async () => {
    const database = await backend.fresh();
    const engine = await openEngine(database);
    engine.workflow('expense', expense, { steps: { book: async () => 'booked' } });
    engine.workflow('other', expense, { steps: { book: async () => 'booked' } });
    await engine.startWorkflow('expense', { amount: 1 }, { key: 'taken' });
    const before = await dumpDatabase(database);
    await expectCode('INVALID_OPTION', () => engine.startWorkflow('expense', {}, { key: '' }));
    await expectCode('INVALID_OPTION', () => engine.startWorkflow('expense', {}, { key: 'x'.repeat(513) }));
    await expectCode('INVALID_OPTION', () => engine.startWorkflow('expense', {}, { key: 'a\u0000b' }));
    await expectCode('INVALID_OPTION', () => engine.startWorkflow('expense', {}, { key: 'lone \uD800' }));
    await expectCode('INVALID_OPTION', () => engine.startWorkflow('expense', {}, { key: 42 as never }));
    await expectCode('INVALID_OPTION', () => engine.startWorkflow('expense', {}, 'key' as never));
    await expectCode('WORKFLOW_KEY_CONFLICT', () => engine.startWorkflow('other', {}, { key: 'taken' }));
    await expectCode('UNKNOWN_WORKFLOW', () => engine.startWorkflow('nope', {}, { key: 'fresh' }));
    expect(await dumpDatabase(database)).toEqual(before);
  });
});
