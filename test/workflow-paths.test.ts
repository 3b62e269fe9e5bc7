import { afterEach, describe, expect, it } from 'vitest';
import { assign, fromPromise, setup, type AnyStateMachine } from 'xstate';
import { PromisedError, type WorkflowOptions } from '../src/index.js';
import { demoWorkflow } from '../src/cli/demo-workflow.js';
import { createTestEngine, workflowPaths, type TestEngine, type WorkflowPath } from '../src/testing/index.js';
import { publishMachine, publishSteps } from './fixtures/dashboard-workflow.js';
import { pipelineMachine, pipelineSteps } from './fixtures/pipeline-workflow.js';

// workflowPaths(machine): every simple path of a workflow's chart, computed by @xstate/graph;
// t.followPath drives a real test engine along one, and must notice when it leaves the path.

const engines: TestEngine[] = [];
afterEach(async () => {
  for (const engine of engines.splice(0)) await engine.stop();
});

async function engineWith(name: string, machine: AnyStateMachine, steps: WorkflowOptions['steps']) {
  const t = await createTestEngine({ register: (engine) => engine.workflow(name, machine, { steps }) });
  engines.push(t);
  return t;
}

const placeholder = fromPromise(async () => null);

/** A step whose output picks the branch, a step that may fail, a day-long expiry. */
const approval = setup({
  types: { context: {} as { amount: number; approvedBy: string | null }, input: {} as { amount: number } },
  actors: { check: fromPromise<{ ok: boolean }>(async () => ({ ok: true })), notify: placeholder },
}).createMachine({
  id: 'approval',
  context: ({ input }) => ({ amount: input.amount, approvedBy: null }),
  initial: 'checking',
  states: {
    checking: {
      invoke: {
        src: 'check',
        input: ({ context }) => ({ amount: context.amount }),
        onDone: [{ guard: ({ event }) => event.output.ok, target: 'waiting' }, { target: 'rejected' }],
        onError: 'broken',
      },
    },
    waiting: {
      on: { APPROVE: { target: 'notifying', actions: assign({ approvedBy: ({ event }) => (event as unknown as { by: string }).by }) } },
      after: { 86_400_000: 'expired' },
    },
    notifying: { invoke: { src: 'notify', onDone: 'approved' }, after: { 5_000: 'approved' } },
    approved: { type: 'final' },
    expired: { type: 'final' },
    rejected: { type: 'final' },
    broken: { type: 'final' },
  },
  output: ({ context }) => context,
});

describe('workflowPaths', () => {
  it('lists every path of the publish workflow (both orders of its parallel checks) and each is followed to its end', async () => {
    const paths = workflowPaths(publishMachine, { input: { title: 'hello' } });
    expect(paths.map((path) => path.moves.map((move) => (move.kind === 'event' ? move.event.type : `${move.kind}:${'step' in move ? move.step : ''}`)))).toEqual([
      ['done:draft', 'APPROVE', 'SPELLING_OK', 'LEGAL_OK', 'done:publish'],
      ['done:draft', 'APPROVE', 'LEGAL_OK', 'SPELLING_OK', 'done:publish'],
    ]);
    expect(paths.every((path) => path.status === 'done' && path.value === 'published')).toBe(true);
    expect(paths[0]!.description).toBe(
      'drafting → (draft done) awaitingApproval → (APPROVE) {"checking":{"spelling":"open","legal":"open"}} → (SPELLING_OK) {"checking":{"spelling":"ok","legal":"open"}} → (LEGAL_OK) publishing → (publish done) published',
    );
    for (const path of paths) {
      const t = await engineWith('publish', publishMachine, publishSteps);
      const record = await t.followPath('publish', path, { input: { title: 'hello' } });
      expect(record).toMatchObject({ status: 'completed', value: 'published' });
      // The mocks ran, never the registered steps: each step promise's result is the path's output.
      expect(record.steps.map((step) => [step.type, step.result])).toEqual([
        ['workflow:publish:draft', null],
        ['workflow:publish:publish', null],
      ]);
    }
  });

  it('the demo workflow: its four interleavings of build and review, each driven with the outputs given', async () => {
    const outputs = { setupEnv: ['env'], writeTests: ['tests'], runTests: ['green'], review: ['lgtm'] };
    const paths = workflowPaths(demoWorkflow, { input: { repo: 'acme/api' }, outputs });
    expect(paths).toHaveLength(4);
    const reviewAt = paths.map((path) => path.moves.findIndex((move) => move.kind === 'done' && move.step === 'review'));
    expect(reviewAt.sort()).toEqual([0, 1, 2, 3]);
    for (const path of paths) {
      expect(path.context).toEqual({ repo: 'acme/api', results: { setup: 'env', tests: 'tests', run: 'green', review: 'lgtm' } });
      const t = await engineWith('ci', demoWorkflow, { setupEnv: async () => 'real', writeTests: async () => 'real', runTests: async () => 'real', review: async () => 'real' });
      const record = await t.followPath('ci', path, { input: { repo: 'acme/api' } });
      expect(record).toMatchObject({ status: 'completed', output: { setup: 'env', tests: 'tests', run: 'green', review: 'lgtm' } });
    }
  });

  it('the pipeline fixture: a durable delay and an approval on every path, fired by the virtual clock', async () => {
    const paths = workflowPaths(pipelineMachine(60_000), { input: { repo: 'r' }, events: { APPROVE: [{ type: 'APPROVE', by: 'ada' }] } });
    expect(paths).toHaveLength(4);
    for (const path of paths) expect(path.moves.slice(-3).map((move) => move.kind)).toEqual(['after', 'event', 'done']);
    const t = await engineWith('pipeline', pipelineMachine(60_000), pipelineSteps());
    const started = t.clock.now();
    const record = await t.followPath('pipeline', paths[0]!, { input: { repo: 'r' } });
    expect(record).toMatchObject({ status: 'completed', output: { approvedBy: 'ada' } });
    expect(t.clock.now() - started).toBe(60_000);
  });

  it('branches on step outputs and failures, and takes timers that fire while a step still runs', async () => {
    const paths = workflowPaths(approval, { input: { amount: 10 }, outputs: { check: [{ ok: true }, { ok: false }] }, events: { APPROVE: [{ type: 'APPROVE', by: 'ada' }] } });
    const ends = paths.map((path) => `${path.description}`);
    expect(ends).toEqual(
      expect.arrayContaining([
        'checking → (check done) waiting → (APPROVE) notifying → (notify done) approved',
        'checking → (check done) waiting → (APPROVE) notifying → (after 5000 ms) approved',
        'checking → (check done) waiting → (after 86400000 ms) expired',
        'checking → (check done) rejected',
        'checking → (check failed) broken',
      ]),
    );
    expect(paths).toHaveLength(5);
    const expected: Record<string, { status: string; output: unknown }> = {
      approved: { status: 'completed', output: { amount: 10, approvedBy: 'ada' } },
      expired: { status: 'completed', output: { amount: 10, approvedBy: null } },
      rejected: { status: 'completed', output: { amount: 10, approvedBy: null } },
      broken: { status: 'completed', output: { amount: 10, approvedBy: null } },
    };
    for (const path of paths) {
      const t = await engineWith('approval', approval, { check: async () => ({ ok: true }), notify: async () => 'sent' });
      const record = await t.followPath('approval', path, { input: { amount: 10 } });
      expect(record, path.description).toMatchObject({ value: path.value, ...expected[path.value as string] });
      // The notify step left running by the 5-second timer never ran: it was held, then cancelled.
      if (path.moves.at(-1)!.kind === 'after' && path.value === 'approved') {
        expect(record.steps.find((step) => step.type === 'workflow:approval:notify')).toMatchObject({ status: 'failed', attempts: 0, error: { code: 'CANCELLED' } });
      }
    }
  });

  it('a cancel the machine compensates is a move of its own', async () => {
    const trip = setup({ actors: { book: placeholder, release: placeholder } }).createMachine({
      id: 'trip',
      initial: 'booking',
      states: {
        booking: { invoke: { src: 'book', onDone: 'booked' }, on: { 'promised.cancel': 'compensating' } },
        booked: { type: 'final' },
        compensating: { invoke: { src: 'release', onDone: 'released' } },
        released: { type: 'final' },
      },
    });
    const paths = workflowPaths(trip);
    expect(paths.map((path) => path.description)).toEqual(['booking → (book done) booked', 'booking → (cancel) compensating → (release done) released']);
    const t = await engineWith('trip', trip, { book: async () => 'booked', release: async () => 'released' });
    const record = await t.followPath('trip', paths[1]!);
    expect(record).toMatchObject({ status: 'failed', value: 'released', error: { code: 'CANCELLED' } });
  });

  it('a path ends where every move leads back onto it: a retry loop after a failure is listed, and followed', async () => {
    const retrying = setup({ actors: { deploy: placeholder } }).createMachine({
      id: 'deploy',
      initial: 'deploying',
      states: {
        deploying: { invoke: { src: 'deploy', onDone: 'deployed', onError: 'failed' } },
        failed: { on: { RETRY: 'deploying', GIVE_UP: 'abandoned' } },
        deployed: { type: 'final' },
        abandoned: { type: 'final' },
      },
    });
    const paths = workflowPaths(retrying);
    expect(paths.map((path) => path.description).sort()).toEqual([
      'deploying → (deploy done) deployed',
      'deploying → (deploy failed) failed → (GIVE_UP) abandoned',
    ]);
    // failed → RETRY → deploying repeats a state: that path stops at `failed` only with to: 'every'.
    const every = workflowPaths(retrying, { to: 'every' }).map((path) => path.description);
    expect(every).toContain('deploying → (deploy failed) failed');
    const fails = workflowPaths(setup({ actors: { deploy: placeholder } }).createMachine({
      id: 'loop',
      initial: 'deploying',
      states: { deploying: { invoke: { src: 'deploy', onDone: 'deployed', onError: 'failed' } }, failed: { on: { RETRY: 'deploying' } }, deployed: { type: 'final' } },
    }));
    expect(fails.map((path) => `${path.status} ${path.description}`).sort()).toEqual(['active deploying → (deploy failed) failed', 'done deploying → (deploy done) deployed']);
    const t = await engineWith('deploy', retrying, { deploy: async () => 'ok' });
    const record = await t.followPath('deploy', paths.find((path) => path.value === 'abandoned')!);
    expect(record).toMatchObject({ status: 'completed', value: 'abandoned' });
    expect(record.steps).toMatchObject([{ status: 'failed', error: { code: 'PATH_STEP_FAILED' } }]);
  });

  it('with to: "every", paths to each reachable state', () => {
    const values = workflowPaths(publishMachine, { input: { title: 'x' }, to: 'every' }).map((path) => JSON.stringify(path.value));
    expect(new Set(values)).toEqual(
      new Set(['"drafting"', '"awaitingApproval"', '{"checking":{"spelling":"open","legal":"open"}}', '{"checking":{"spelling":"ok","legal":"open"}}', '{"checking":{"spelling":"open","legal":"ok"}}', '"publishing"', '"published"']),
    );
  });

  it('followPath notices a workflow that leaves the path (the registered machine is not the one the paths came from)', async () => {
    const [path] = workflowPaths(publishMachine, { input: { title: 'x' } }) as [WorkflowPath];
    const skipping = setup({ actors: { draft: placeholder, publish: placeholder } }).createMachine({
      id: 'publish',
      initial: 'drafting',
      states: {
        drafting: { invoke: { src: 'draft', onDone: 'awaitingApproval' } },
        awaitingApproval: { on: { APPROVE: 'publishing' } },   // the checks were dropped
        publishing: { invoke: { src: 'publish', onDone: 'published' } },
        published: { type: 'final' },
      },
    });
    const t = await engineWith('publish', skipping, publishSteps);
    const error = await t.followPath('publish', path).catch((thrown: unknown) => thrown);
    expect(error).toBeInstanceOf(PromisedError);
    expect((error as PromisedError).code).toBe('PATH_DIVERGED');
    expect((error as PromisedError).message).toContain('move 2');
    expect((error as PromisedError).message).toContain('"publishing"');
  });

  it('refuses what is not a machine, and options of the wrong shape, with INVALID_OPTION', () => {
    const codeOf = (call: () => unknown) => {
      try {
        call();
      } catch (error) {
        return (error as PromisedError).code;
      }
      return 'no error';
    };
    expect(codeOf(() => workflowPaths({} as never))).toBe('INVALID_OPTION');
    expect(codeOf(() => workflowPaths(publishMachine, { outputs: { draft: 'x' as never } }))).toBe('INVALID_OPTION');
    expect(codeOf(() => workflowPaths(publishMachine, { to: 'all' as never }))).toBe('INVALID_OPTION');
    // A guard that reads the step's output throws on the default (null) output: the message says what to give.
    expect(codeOf(() => workflowPaths(approval, { input: { amount: 1 } }))).toBe('INVALID_OPTION');
  });
});
