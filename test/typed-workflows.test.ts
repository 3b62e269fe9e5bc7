// defineWorkflow: a workflow's name and machine in one value, whose machine types what
// startWorkflow takes (types.input), what send takes for the id it returns (types.events) and
// what workflowResult resolves (its output). Type-level expectations are checked by tsc
// (`npx tsc --noEmit -p tsconfig.json` includes test/), run-time ones by vitest.
import { afterEach, describe, expect, expectTypeOf, it } from 'vitest';
import { assign, createMachine, fromPromise, setup } from 'xstate';
import {
  createEngine,
  defineWorkflow,
  PromisedError,
  type Engine,
  type SendResult,
  type WorkflowEventOf,
  type WorkflowId,
  type WorkflowInputOf,
  type WorkflowOutputOf,
} from '../src/index.js';
import { dumpDb } from './helpers/db-dump.js';
import { tempDbPath } from './helpers/temp-db.js';

type ExpenseEvent = { type: 'APPROVE'; by: string } | { type: 'REJECT'; reason?: string };

const expenseMachine = setup({
  types: {
    input: {} as { amount: number; currency: 'EUR' | 'USD' },
    context: {} as { amount: number; approvedBy: string | null; paid: boolean },
    events: {} as ExpenseEvent,
    output: {} as { amount: number; approvedBy: string | null; paid: boolean },
  },
  actors: { pay: fromPromise(async () => null) },
}).createMachine({
  id: 'expense',
  context: ({ input }) => ({ amount: input.amount, approvedBy: null, paid: false }),
  initial: 'waiting',
  states: {
    waiting: { on: { APPROVE: { target: 'paying', actions: assign({ approvedBy: ({ event }) => event.by }) }, REJECT: 'rejected' } },
    paying: { invoke: { src: 'pay', input: ({ context }) => ({ amount: context.amount }), onDone: { target: 'paid', actions: assign({ paid: true }) } } },
    paid: { type: 'final' },
    rejected: { type: 'final' },
  },
  output: ({ context }) => context,
});

// What a caller imports: no steps.
const expense = defineWorkflow('expense', expenseMachine);

const engines: Engine[] = [];
afterEach(async () => {
  for (const engine of engines.splice(0)) await engine.stop();
});
async function openEngine(database = tempDbPath()): Promise<Engine> {
  const engine = await createEngine({ database, changeCheckIntervalMs: 10, cleanupIntervalMs: 0 });
  engines.push(engine);
  return engine;
}

describe('defineWorkflow: types', () => {
  it('the machine types the input, the events of the id it returns and the output', () => {
    expectTypeOf<WorkflowInputOf<typeof expense>>().toEqualTypeOf<{ amount: number; currency: 'EUR' | 'USD' }>();
    expectTypeOf<WorkflowEventOf<typeof expense>>().toEqualTypeOf<ExpenseEvent>();
    expectTypeOf<WorkflowOutputOf<typeof expense>>().toEqualTypeOf<{ amount: number; approvedBy: string | null; paid: boolean }>();

    // Never called: the calls are here for tsc, which checks this file.
    async function compileOnly(engine: Engine, idFromRequest: string) {
      const id = await engine.startWorkflow(expense, { amount: 12, currency: 'EUR' });
      expectTypeOf(id).toEqualTypeOf<WorkflowId<ExpenseEvent, { amount: number; approvedBy: string | null; paid: boolean }>>();
      // @ts-expect-error currency must be 'EUR' or 'USD'
      await engine.startWorkflow(expense, { amount: 12, currency: 'GBP' });
      // @ts-expect-error amount is required
      await engine.startWorkflow(expense, { currency: 'EUR' });
      // @ts-expect-error the input is required by the machine
      await engine.startWorkflow(expense);

      expectTypeOf(engine.send(id, { type: 'APPROVE', by: 'ada' })).resolves.toEqualTypeOf<SendResult>();
      await engine.send(id, { type: 'REJECT' });
      // @ts-expect-error APPROVE needs its `by`
      await engine.send(id, { type: 'APPROVE' });
      // @ts-expect-error not an event of this machine
      await engine.send(id, { type: 'APPROVED', by: 'ada' });
      // @ts-expect-error `by` is a string
      await engine.send(id, { type: 'APPROVE', by: 42 });

      expectTypeOf(engine.workflowResult(id)).resolves.toEqualTypeOf<{ amount: number; approvedBy: string | null; paid: boolean }>();

      // An id that arrives as a plain string is untyped, as before; annotated, it is typed again.
      await engine.send(idFromRequest, { type: 'ANYTHING', extra: 1 });
      expectTypeOf(engine.workflowResult(idFromRequest)).resolves.toEqualTypeOf<unknown>();
      const typed: WorkflowId<WorkflowEventOf<typeof expense>> = idFromRequest;
      // @ts-expect-error the annotation brings the machine's events back
      await engine.send(typed, { type: 'ANYTHING' });

      // The string API is unchanged.
      expectTypeOf(engine.startWorkflow('expense', { anything: true })).resolves.toEqualTypeOf<string>();
      // @ts-expect-error a definition needs the steps, given here or in defineWorkflow
      engine.workflow(expense, { stepz: {} });
    }
    expect(typeof compileOnly).toBe('function');
  });
});

describe('defineWorkflow: at run time', () => {
  it('a worker registers the definition with its steps; a caller starts it, sends typed events and reads the typed output', async () => {
    const engine = await openEngine();
    const paid: unknown[] = [];
    engine.workflow(expense, { steps: { pay: async (input) => (paid.push(input), 'paid') } });
    await engine.start();
    const id = await engine.startWorkflow(expense, { amount: 12, currency: 'EUR' });
    expect(typeof id).toBe('string');
    expect((await engine.getWorkflow(id))!.name).toBe('expense');
    expect(await engine.send(id, { type: 'APPROVE', by: 'ada' })).toMatchObject({ outcome: 'accepted' });
    const output = await engine.workflowResult(id, { timeout: 5_000 });
    expect(output).toEqual({ amount: 12, approvedBy: 'ada', paid: true });
    expect(paid).toEqual([{ amount: 12 }]);
  });

  it('registers with the steps given to defineWorkflow, and refuses a definition without steps', async () => {
    const engine = await openEngine();
    const worker = defineWorkflow('expense', expenseMachine, { steps: { pay: async () => 'paid' } });
    expect(() => engine.workflow(expense)).toThrow(expect.objectContaining({ code: 'INVALID_OPTION' }));
    expect(engine.workflowNames).toEqual([]);
    engine.workflow(worker);
    expect(engine.workflowNames).toEqual(['expense']);
    // The caller's definition (the same machine) starts what the worker's registered.
    const id = await engine.startWorkflow(expense, { amount: 3, currency: 'USD' });
    await engine.start();
    await engine.send(id, { type: 'REJECT', reason: 'too much' });
    expect(await engine.workflowResult(id, { timeout: 5_000 })).toEqual({ amount: 3, approvedBy: null, paid: false });
  });

  it('refuses, before anything is written, a definition whose machine is not the registered one, and bad definitions where they are written', async () => {
    const database = tempDbPath();
    const engine = await openEngine(database);
    engine.workflow('expense', expenseMachine.provide({}), { steps: { pay: async () => 'paid' } });
    await engine.start();
    const before = dumpDb(database);
    const error = await engine.startWorkflow(expense, { amount: 1, currency: 'EUR' }).catch((thrown: unknown) => thrown);
    expect(error).toBeInstanceOf(PromisedError);
    expect((error as PromisedError).code).toBe('DUPLICATE_WORKFLOW');
    expect(dumpDb(database)).toEqual(before);

    const code = (call: () => unknown) => {
      try {
        call();
        return 'no error';
      } catch (thrown) {
        return (thrown as PromisedError).code;
      }
    };
    expect(code(() => defineWorkflow('', expenseMachine))).toBe('INVALID_OPTION');
    expect(code(() => defineWorkflow('expense', {} as never))).toBe('INVALID_OPTION');
    // Steps that do not match the machine are refused where they are written, as at registration.
    expect(code(() => defineWorkflow('expense', expenseMachine, { steps: { payy: async () => 1 } }))).toBe('WORKFLOW_STEP_MISMATCH');
    const inline = createMachine({ initial: 'a', states: { a: { invoke: { src: fromPromise(async () => 1) } } } });
    expect(code(() => defineWorkflow('inline', inline))).toBe('WORKFLOW_STEP_MISMATCH');
  });
});
