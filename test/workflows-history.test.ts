import { fromPromise, setup } from 'xstate';
import { describe, expect, it } from 'vitest';
import { engineBackends } from './helpers/backends.js';
import { dumpDatabase } from './helpers/db-dump.js';
import { until } from './helpers/wait.js';
import { expectCode, openEngine, readRows } from './helpers/workflow-engines.js';
import { expectedOutput, pipelineMachine, pipelineSteps } from './fixtures/pipeline-workflow.js';

// Every transition is stored with the snapshot after it, in its own transaction; a new workflow
// can start from any of them, and the original is left as it was.

for (const backend of engineBackends) describe.skipIf(backend.skip)(`workflow history and restart on ${backend.name}`, () => {
  it('lists every transition, each stored in the transaction that made it', async () => {
    const database = await backend.fresh();
    const engine = await openEngine(database);
    engine.workflow('pipeline', pipelineMachine(50), { steps: pipelineSteps() });
    await engine.start();
    const id = await engine.startWorkflow('pipeline', { repo: 'h' });
    await until(async () => (await engine.getWorkflow(id))!.value === 'approval', 5_000, 'approval');
    await engine.send(id, { type: 'APPROVE', by: 'ada' });
    await engine.workflowResult(id, { timeout: 5_000 });
    const history = await engine.workflowHistory(id);
    expect(history.map((line) => line.seq)).toEqual(history.map((_, index) => index + 1));
    expect(history[0]).toMatchObject({ seq: 1, event: 'xstate.init', from: null, to: { build: { code: 'setup', review: 'reviewing' } }, status: 'running' });
    expect(history.find((line) => line.event === 'APPROVE')).toMatchObject({ from: 'approval', to: 'shipping' });
    expect(history.find((line) => line.event.startsWith('xstate.after.'))).toMatchObject({ from: 'cooldown', to: 'approval' });
    expect(history.at(-1)).toMatchObject({ to: 'shipped', status: 'completed' });
    // Each line went with its transition: the count matches the workflow's own counter.
    const [row] = await readRows<{ seq: number }>(database, 'select seq from workflows where id = $1', [Number(id)]);
    expect(Number(row!.seq)).toBe(history.length);
    for (let index = 1; index < history.length; index++) expect(history[index]!.from).toEqual(history[index - 1]!.to);
    await expectCode('NOT_FOUND', () => engine.workflowHistory('9999'));
  });

  it('restarts from a waiting state, from running steps and from a set timer; the original is left as it is', async () => {
    const database = await backend.fresh();
    const engine = await openEngine(database);
    const calls: string[] = [];
    engine.workflow('pipeline', pipelineMachine(100), { steps: pipelineSteps((step, input) => void calls.push(`${step}:${input.repo}`)) });
    await engine.start();
    const id = await engine.startWorkflow('pipeline', { repo: 'orig' });
    await until(async () => (await engine.getWorkflow(id))!.value === 'approval', 5_000, 'approval');
    await engine.send(id, { type: 'APPROVE', by: 'ada' });
    await engine.workflowResult(id, { timeout: 5_000 });
    const original = await engine.getWorkflow(id);
    const history = await engine.workflowHistory(id);

    // From the wait for APPROVE: the copy waits there, and finishes with its own approval.
    const atApproval = history.find((line) => line.to === 'approval')!.seq;
    const copy = await engine.restartWorkflow(id, { fromSeq: atApproval });
    expect(copy).not.toBe(id);
    expect(await engine.getWorkflow(copy)).toMatchObject({ status: 'running', value: 'approval', restartedFrom: { id, seq: atApproval }, context: { repo: 'orig' } });
    expect(await engine.workflowHistory(copy)).toMatchObject([{ seq: 1, event: 'promised.restart', from: null, to: 'approval' }]);
    await engine.send(copy, { type: 'APPROVE', by: 'bo' });
    expect(await engine.workflowResult(copy, { timeout: 5_000 })).toEqual(expectedOutput('orig', 'bo'));

    // From the start: the two steps that were running run again, with the input they had.
    calls.length = 0;
    const fromStart = await engine.restartWorkflow(id, { fromSeq: 1 });
    expect((await engine.getWorkflow(fromStart))!.steps.map((step) => [step.type, step.payload])).toEqual([
      ['workflow:pipeline:setupEnv', { input: { repo: 'orig' } }],
      ['workflow:pipeline:review', { input: { repo: 'orig' } }],
    ]);
    await until(async () => (await engine.getWorkflow(fromStart))!.value === 'approval', 5_000, 'the restarted copy to reach approval');
    expect(calls.sort()).toEqual(['review:orig', 'runTests:orig', 'setupEnv:orig', 'writeTests:orig']);

    // From the delay: its timer is set again with the delay it had left.
    const atCooldown = history.find((line) => line.to === 'cooldown')!.seq;
    const cooling = await engine.restartWorkflow(id, { fromSeq: atCooldown });
    const [timer] = await readRows<{ fire_at: number }>(database, 'select fire_at from workflow_timers where workflow_id = $1', [Number(cooling)]);
    expect(Number(timer!.fire_at) - Date.now()).toBeLessThanOrEqual(100);
    await until(async () => (await engine.getWorkflow(cooling))!.value === 'approval', 5_000, 'the restarted timer to fire');

    // The original did not move.
    expect(await engine.getWorkflow(id)).toEqual(original);
    expect(await engine.workflowHistory(id)).toEqual(history);
  });

  it('a workflow whose step failed is run again from before the failure, once the step is fixed', async () => {
    const database = await backend.fresh();
    const machine = setup({ actors: { charge: fromPromise(async () => 0) } }).createMachine({
      id: 'pay',
      initial: 'review',
      states: { review: { on: { OK: 'charging' } }, charging: { invoke: { src: 'charge', input: { amount: 5 }, onDone: 'paid' } }, paid: { type: 'final' } },
    });
    let broken = true;
    const engine = await openEngine(database);
    engine.workflow('pay', machine, {
      steps: {
        charge: async (input: { amount: number }) => {
          if (broken) throw new Error('card service down');
          return input.amount;
        },
      },
    });
    await engine.start();
    const id = await engine.startWorkflow('pay', {});
    await engine.send(id, { type: 'OK' });
    await expect(engine.workflowResult(id, { timeout: 5_000 })).rejects.toMatchObject({ error: { code: 'WORKFLOW_ERROR' } });
    const history = await engine.workflowHistory(id);
    expect(history.map((line) => [line.event, line.to, line.status])).toEqual([
      ['xstate.init', 'review', 'running'],
      ['OK', 'charging', 'running'],
      [expect.stringMatching(/^xstate\.error\.actor\./), 'charging', 'failed'],
    ]);
    broken = false;
    const retry = await engine.restartWorkflow(id, { fromSeq: 2 });
    await engine.workflowResult(retry, { timeout: 5_000 });
    expect(await engine.getWorkflow(retry)).toMatchObject({ status: 'completed', value: 'paid' });
    await expectCode('INVALID_OPTION', () => engine.restartWorkflow(id, { fromSeq: 3 }));
  });

  it('a fromSeq out of range, a bad option or an unknown workflow is refused before anything is written', async () => {
    const database = await backend.fresh();
    const engine = await openEngine(database);
    engine.workflow('pipeline', pipelineMachine(100), { steps: pipelineSteps() });
    const id = await engine.startWorkflow('pipeline', { repo: 'x' });
    const before = await dumpDatabase(database);
    for (const fromSeq of [0, -1, 1.5, 2, Number.NaN, '1' as never]) await expectCode('INVALID_OPTION', () => engine.restartWorkflow(id, { fromSeq }));
    await expectCode('INVALID_OPTION', () => engine.restartWorkflow(id, undefined as never));
    await expectCode('INVALID_OPTION', () => engine.restartWorkflow(id, { fromSeq: 1, key: '' }));
    await expectCode('NOT_FOUND', () => engine.restartWorkflow('5555', { fromSeq: 1 }));
    expect(await dumpDatabase(database)).toEqual(before);
    const keyed = await engine.restartWorkflow(id, { fromSeq: 1, key: 'copy-1' });
    expect(await engine.restartWorkflow(id, { fromSeq: 1, key: 'copy-1' })).toBe(keyed);
  });
});
