import { afterEach, describe, expect, it } from 'vitest';
import { fromPromise, setup } from 'xstate';
import { createEngine, type Engine, type TransitionEvent, type WorkflowChange } from '../src/index.js';
import { Kernel } from '../src/kernel/kernel.js';
import { resolveEngineOptions } from '../src/kernel/options.js';
import { openStore } from '../src/persistence/open-store.js';
import { engineBackends, executeSql } from './helpers/backends.js';

// The effects of a transaction attempt that rolled back (announcements, workflow wake-ups and
// events, waiter resolutions) never run: not at the rollback, not at the next commit. On SQLite
// the store reuses one transaction object, so an effect kept by that object would be run by
// the next commit; on PostgreSQL a lost attempt is retried in a new one.

const engines: Engine[] = [];
const kernels: Kernel[] = [];
afterEach(async () => {
  for (const engine of engines.splice(0)) await engine.stop();
  for (const kernel of kernels.splice(0)) if (kernel.stopClaiming()) await kernel.close();
});

/** A trigger that refuses inserting a promise of `type` (SQLite's RAISE, PostgreSQL's RAISE EXCEPTION). */
async function refuseInsertsOf(database: string, type: string): Promise<void> {
  if (database.startsWith('postgres')) {
    await executeSql(
      database,
      `create function refuse_insert() returns trigger language plpgsql as $$ begin raise exception 'refused by test trigger'; end $$;
       create trigger refuse_insert before insert on promises for each row when (new.type = '${type}') execute function refuse_insert();`,
    );
  } else {
    await executeSql(database, `create trigger refuse_insert before insert on promises when new.type = '${type}' begin select raise(abort, 'refused by test trigger'); end;`);
  }
}

/** A trigger that refuses completing a promise of `type`. */
async function refuseCompletionsOf(database: string, type: string): Promise<void> {
  if (database.startsWith('postgres')) {
    await executeSql(
      database,
      `create function refuse_completion() returns trigger language plpgsql as $$ begin raise exception 'refused by test trigger'; end $$;
       create trigger refuse_completion before update on promises for each row when (new.type = '${type}' and new.status = 'completed') execute function refuse_completion();`,
    );
  } else {
    await executeSql(
      database,
      `create trigger refuse_completion before update on promises when new.type = '${type}' and new.status = 'completed' begin select raise(abort, 'refused by test trigger'); end;`,
    );
  }
}

// The step's logic is a placeholder: the engine runs the step given to engine.workflow().
const oneStep = (id: string) =>
  setup({ actors: { work: fromPromise(async () => undefined) } }).createMachine({
    id,
    initial: 'working',
    states: { working: { invoke: { src: 'work', onDone: 'done' } }, done: { type: 'final' } },
  });

for (const backend of engineBackends) describe.skipIf(backend.skip)(`rolled-back transactions on ${backend.name}`, () => {
  it('a unit of work that rolled back never announces its transitions nor runs its afterCommit effects', async () => {
    const database = await backend.fresh();
    const resolved = resolveEngineOptions({ database, changeCheckIntervalMs: 0, cleanupIntervalMs: 0 });
    const announced: TransitionEvent[] = [];
    const kernel = new Kernel(await openStore(resolved), resolved, {
      emit: (event, ...args) => (event === 'transition' ? announced.push(args[0] as TransitionEvent) > 0 : false),
      listenerCount: (event) => (event === 'transition' ? 1 : 0),
    });
    kernels.push(kernel);
    const ran: string[] = [];
    let attempts = 0;
    // A conflict PostgreSQL's store retries in a new attempt; SQLite's hands it to the caller.
    const conflict = Object.assign(new Error('could not serialize access'), { code: '40001' });
    const write = kernel.write(async (uow) => {
      attempts++;
      const label = `attempt ${attempts}`;
      uow.record({ id: 1_000 + attempts, type: 'x', event: 'CANCEL', from: 'pending', to: 'failed' });
      uow.afterCommit(() => ran.push(label));
      if (attempts === 1) throw conflict;
      return label;
    });
    if (backend.name === 'PostgreSQL') {
      expect(await write).toBe('attempt 2');
    } else {
      await expect(write).rejects.toBe(conflict);
      // The next commit, through the same reused transaction object, runs only its own effects.
      expect(await kernel.write(async (uow) => (uow.afterCommit(() => ran.push('next commit')), 'next'))).toBe('next');
    }
    expect(ran).toEqual([backend.name === 'PostgreSQL' ? 'attempt 2' : 'next commit']);
    expect(announced.map((t) => t.id)).toEqual(backend.name === 'PostgreSQL' ? ['1002'] : []);
  });

  it('a workflow start that rolled back wakes no waiter and emits no workflow or transition event, now or at the next commit', async () => {
    const database = await backend.fresh();
    const engine = await createEngine({ database, changeCheckIntervalMs: 0, stopTimeoutMs: 2_000 });
    engines.push(engine);
    await refuseInsertsOf(database, 'workflow:doomed:work');
    engine.workflow('doomed', oneStep('doomed'), { steps: { work: async () => 'never' } });
    engine.workflow('fine', oneStep('fine'), { steps: { work: async () => 'ok' } });
    engine.task('plain', async () => 'plain');
    const changes: WorkflowChange[] = [];
    const transitions: TransitionEvent[] = [];
    engine.on('workflow', (change) => changes.push(change));
    engine.on('transition', (t) => transitions.push(t));
    await engine.start();

    await expect(engine.startWorkflow('doomed', {})).rejects.toThrow(/refused by test trigger/);
    expect(changes).toEqual([]);
    expect(transitions.filter((t) => t.type === 'workflow:doomed:work')).toEqual([]);
    expect(await engine.listWorkflows()).toEqual([]);

    // Later commits answer only what they wrote.
    const id = await engine.startWorkflow('fine', {});
    expect(await engine.workflowResult(id, { timeout: 10_000 })).toBeNull();
    expect(await engine.result(await engine.enqueue('plain'), { timeout: 10_000 })).toBe('plain');
    expect(new Set(changes.map((change) => change.name))).toEqual(new Set(['fine']));
    expect(changes.every((change) => change.id === id)).toBe(true);
    expect(transitions.filter((t) => t.type === 'workflow:doomed:work')).toEqual([]);
  });

  it('a completion the database refuses is never announced nor answered; the failure committed instead is', async () => {
    const database = await backend.fresh();
    const engine = await createEngine({ database, changeCheckIntervalMs: 0, stopTimeoutMs: 5_000 });
    engines.push(engine);
    await refuseCompletionsOf(database, 'held');
    engine.task('held', async () => 'done');
    const transitions: TransitionEvent[] = [];
    const errors: Error[] = [];
    engine.on('transition', (t) => transitions.push(t));
    engine.on('error', (error) => errors.push(error));
    await engine.start();
    const id = await engine.enqueue('held');
    // The completion's commit is refused: the waiter hears the failure committed in its place, never a success.
    await expect(engine.result(id, { timeout: 20_000 })).rejects.toMatchObject({ error: { code: 'OUTCOME_NOT_STORABLE' } });
    expect(transitions.filter((t) => t.id === id).map((t) => `${t.event}:${t.to}`)).toEqual(['DEPENDENCIES_RESOLVED:pending', 'CLAIM:in_progress', 'FAIL:failed']);
    expect((await engine.get(id))!.status).toBe('failed');
    expect(errors).toEqual([]);
  });
});
