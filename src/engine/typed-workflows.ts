import type { AnyStateMachine, EventFromLogic, EventObject, InputFrom, OutputFrom } from 'xstate';
import { InvalidOptionError } from '../errors.js';
import { checkWorkflow } from '../workflows/workflow-definitions.js';
import type { WorkflowEvent, WorkflowOptions } from '../workflows/workflow-types.js';

/**
 * A workflow's name and machine in one value, made by {@link defineWorkflow}, that both sides
 * import: a worker registers it (`engine.workflow(definition)`), a caller starts it
 * (`engine.startWorkflow(definition, input)`), typed by the machine's own `types.input`; the id
 * it returns types `send` by the machine's `types.events` and `workflowResult` by its output.
 */
export interface TypedWorkflow<M extends AnyStateMachine = AnyStateMachine> {
  readonly name: string;
  readonly machine: M;
  /** The steps and options a worker registers it with; a caller's definition may leave them out. */
  readonly options: WorkflowOptions | undefined;
  /** Types only, never set: what `startWorkflow` takes, what `send` takes, what `workflowResult` resolves. */
  readonly '~types'?: { readonly input: InputFrom<M>; readonly event: EventFromLogic<M>; readonly output: OutputFrom<M> };
}

/** Any {@link TypedWorkflow}, whatever its machine. */
export type AnyTypedWorkflow = TypedWorkflow<any>;

/** What `engine.startWorkflow(definition, input)` takes: the machine's `types.input`. */
export type WorkflowInputOf<W extends AnyTypedWorkflow> = NonNullable<W['~types']>['input'];
/** What `engine.send(id, event)` takes for a workflow of this definition: the machine's `types.events`. */
export type WorkflowEventOf<W extends AnyTypedWorkflow> = NonNullable<W['~types']>['event'];
/** What `engine.workflowResult(id)` resolves: the machine's output. */
export type WorkflowOutputOf<W extends AnyTypedWorkflow> = NonNullable<W['~types']>['output'];

declare const workflowTypes: unique symbol;

/**
 * A workflow id that remembers its machine's event and output types, as
 * `engine.startWorkflow(definition, …)` returns it, so that `send(id, event)` and
 * `workflowResult(id)` are typed. At run time it is a plain string; a plain string is accepted
 * wherever one is (and is then untyped).
 */
export type WorkflowId<E extends EventObject = WorkflowEvent, O = unknown> = string & { readonly [workflowTypes]?: { readonly event: E; readonly output: O } };

/**
 * Defines a workflow: its name, its XState v5 machine and, for the worker that registers it,
 * its steps and options (checked here, where they are written). The machine's own types type
 * what goes in and out: `startWorkflow(definition, input)` takes its `types.input`, the id it
 * returns makes `send` take only its `types.events` and `workflowResult` resolve its output.
 *
 * @example
 * ```ts
 * import { fromPromise, setup } from 'xstate';
 * import { defineWorkflow } from 'promised';
 *
 * const machine = setup({
 *   types: { input: {} as { amount: number }, events: {} as { type: 'APPROVE'; by: string } | { type: 'REJECT' } },
 *   actors: { pay: fromPromise(async () => null) },
 * }).createMachine({ initial: 'waiting', states: { waiting: { on: { APPROVE: 'paying', REJECT: 'done' } }, paying: { invoke: { src: 'pay', onDone: 'done' } }, done: { type: 'final' } } });
 * const expense = defineWorkflow('expense', machine, { steps: { pay: async () => 'paid' } });
 * ```
 */
export function defineWorkflow<M extends AnyStateMachine>(name: string, machine: M, options?: WorkflowOptions): TypedWorkflow<M> {
  if (typeof name !== 'string' || name.length === 0 || name.length > 200) throw new InvalidOptionError('name', name, 'a non-empty workflow name of at most 200 characters');
  if (options !== undefined) checkWorkflow(name, machine, options);
  else checkWorkflow(name, machine, { steps: {} }, { stepsGiven: false });
  return Object.freeze({ name, machine, options });
}

/** True for what {@link defineWorkflow} returns. */
export function isTypedWorkflow(value: unknown): value is AnyTypedWorkflow {
  return value !== null && typeof value === 'object' && typeof (value as { name?: unknown }).name === 'string' && 'machine' in value && 'options' in value;
}
