import { assign, fromPromise, setup } from 'xstate';

/**
 * The demo's workflow, written as users write theirs: an ordinary XState machine whose invoked
 * actors are durable steps. Setup → tests → run, with a review running in parallel.
 */
export const demoWorkflow = setup({
  types: { context: {} as { repo: string; results: Record<string, unknown> }, input: {} as { repo: string } },
  // Placeholders: the engine runs the steps given to engine.workflow(), never these.
  actors: {
    setupEnv: fromPromise(async () => null),
    writeTests: fromPromise(async () => null),
    runTests: fromPromise(async () => null),
    review: fromPromise(async () => null),
  },
}).createMachine({
  id: 'ci',
  context: ({ input }) => ({ repo: input.repo, results: {} }),
  initial: 'working',
  states: {
    working: {
      type: 'parallel',
      states: {
        build: {
          initial: 'setup',
          states: {
            setup: { invoke: { src: 'setupEnv', input: ({ context }) => ({ repo: context.repo }), onDone: { target: 'tests', actions: assign({ results: ({ context, event }) => ({ ...context.results, setup: event.output }) }) } } },
            tests: { invoke: { src: 'writeTests', input: ({ context }) => ({ repo: context.repo }), onDone: { target: 'run', actions: assign({ results: ({ context, event }) => ({ ...context.results, tests: event.output }) }) } } },
            run: { invoke: { src: 'runTests', input: ({ context }) => ({ repo: context.repo }), onDone: { target: 'built', actions: assign({ results: ({ context, event }) => ({ ...context.results, run: event.output }) }) } } },
            built: { type: 'final' },
          },
        },
        review: {
          initial: 'reviewing',
          states: {
            reviewing: { invoke: { src: 'review', input: ({ context }) => ({ repo: context.repo }), onDone: { target: 'reviewed', actions: assign({ results: ({ context, event }) => ({ ...context.results, review: event.output }) }) } } },
            reviewed: { type: 'final' },
          },
        },
      },
      onDone: 'done',
    },
    done: { type: 'final' },
  },
  output: ({ context }) => context.results,
});
