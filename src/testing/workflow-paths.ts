import { getAdjacencyMap, getSimplePaths } from '@xstate/graph';
import type { AnyMachineSnapshot, AnyStateMachine, EventObject, StateValue } from 'xstate';
import { InvalidOptionError } from '../errors.js';
import { afterDelay } from '../workflows/workflow-migration.js';

/** One move along a {@link WorkflowPath}: what the test makes happen, and the state it leads to. */
export type WorkflowPathMove =
  /** The step `step` (an actor name of `setup({ actors })`) of invocation `invokeId` returns `output`. */
  | { kind: 'done'; step: string; invokeId: string; output: unknown; to: StateValue }
  /** The step `step` of invocation `invokeId` fails for good with `error`. */
  | { kind: 'error'; step: string; invokeId: string; error: { code: string; message: string }; to: StateValue }
  /** An external event, as `engine.send` sends it. */
  | { kind: 'event'; event: EventObject; to: StateValue }
  /** The `after` timer of the state fires, `delay` ms after the state was entered. */
  | { kind: 'after'; delay: number; to: StateValue }
  /** `engine.cancelWorkflow`: the machine handles `promised.cancel` and compensates. */
  | { kind: 'cancel'; to: StateValue };

/** A simple path through a workflow's chart (no state visited twice), from its initial state. */
export interface WorkflowPath {
  /** The moves, in order: `drafting → (draft done) awaitingApproval → (APPROVE) …`. */
  description: string;
  moves: WorkflowPathMove[];
  /** The state value the path ends in. */
  value: StateValue;
  /** `done` when that is a final state of the machine (the workflow completes there), else `active`. */
  status: 'done' | 'active';
  /** The context the machine has there, as XState computed it along the path. */
  context: unknown;
}

/** Options of {@link workflowPaths}. */
export interface WorkflowPathsOptions {
  /** The workflow's input, as `startWorkflow` would get it (the machine's context may be made from it). */
  input?: unknown;
  /**
   * What each step returns, by step name: each done move of that step is tried with each output
   * (so guards that read `event.output` take each branch). @defaultValue `[null]` (what a step that returns nothing delivers)
   */
  outputs?: Record<string, unknown[]>;
  /** The events to send for an event type, with their fields (guards may read them). @defaultValue `[{ type }]` */
  events?: Record<string, Array<{ type: string; [field: string]: unknown }>>;
  /**
   * Which paths: `'end'`, those that cannot be made longer without visiting a state twice (they
   * end in a final state, a state without moves, or one whose every move leads back onto the
   * path, as a retry loop does); `'every'`, every simple path to every reachable state. @defaultValue 'end'
   */
  to?: 'end' | 'every';
}

const DONE = 'xstate.done.actor.';
const ERROR = 'xstate.error.actor.';
const AFTER = 'xstate.after.';
const CANCEL = 'promised.cancel';
/** What a step that fails in a path delivers: the `{ code, message }` a failed step promise carries. */
export const PATH_STEP_ERROR = { code: 'PATH_STEP_FAILED', message: 'failed on this path' } as const;

/**
 * Every simple path through a workflow machine, from its initial state, that cannot be made
 * longer without visiting a state twice; each lists the moves that lead to its end (a step done or
 * failed, an external event, an `after` timer, a cancel the machine compensates). Computed with
 * XState's own graph tooling (`@xstate/graph`, `getSimplePaths`), never by running anything:
 * placeholders of `setup({ actors })` are not called. States are told apart by their value (not
 * their context), so a loop through the chart is walked once. Drive one with
 * `TestEngine.followPath`.
 *
 * @example
 * ```ts
 * import { workflowPaths } from 'promised/testing';
 * for (const path of workflowPaths(machine, { input: { title: 'hello' } })) console.log(path.description);
 * ```
 */
export function workflowPaths(machine: AnyStateMachine, options: WorkflowPathsOptions = {}): WorkflowPath[] {
  if (!machine || typeof (machine as { getInitialSnapshot?: unknown }).getInitialSnapshot !== 'function' || !(machine as { root?: unknown }).root) {
    throw new InvalidOptionError('machine', machine, 'an XState v5 machine (createMachine or setup(...).createMachine)');
  }
  const outputs = checkedRecord(options.outputs, 'outputs');
  const events = checkedRecord<EventObject>(options.events, 'events');
  const to = options.to ?? 'end';
  if (to !== 'end' && to !== 'every') throw new InvalidOptionError('to', to, "'end' or 'every'");
  const movesOf = (snapshot: AnyMachineSnapshot): EventObject[] => (snapshot.status === 'active' ? drivableEvents(snapshot, outputs, events) : []);
  // A chart's states, not the machine's every context: a loop is walked once.
  const key = (snapshot: AnyMachineSnapshot) => JSON.stringify([snapshot.value, snapshot.status]);
  const traversal = { input: options.input, events: movesOf, serializeState: key } as never;
  let found: Array<{ state: AnyMachineSnapshot; steps: Array<{ state: AnyMachineSnapshot; event: EventObject }> }>;
  let adjacency: Record<string, { transitions: Record<string, { state: AnyMachineSnapshot }> }>;
  try {
    found = getSimplePaths(machine, traversal) as never;
    adjacency = getAdjacencyMap(machine, traversal) as never;
  } catch (error) {
    throw new InvalidOptionError('machine', machine.id, `a machine whose guards and actions run on the path's events (${(error as Error).message}); give the step outputs and event fields they read with { outputs, events }`);
  }
  if (to === 'end') {
    // A path ends where every move leads back onto it (a final state has none; a retry loop
    // leads back to a state already walked): it cannot be made longer without repeating a state.
    found = found.filter(({ state, steps }) => {
      const walked = new Set([...steps.map((step) => key(step.state)), key(state)]);
      return Object.values(adjacency[key(state)]?.transitions ?? {}).every((next) => walked.has(key(next.state)));
    });
  }
  return found.map(({ state, steps }) => {
    const moves = steps.slice(1).map((step, index) => toMove(machine, steps[index]!.state, step.event, step.state.value));
    return { moves, value: state.value, status: state.status === 'done' ? 'done' : 'active', context: state.context, description: describe(steps[0]!.state.value, moves) };
  });
}

/** The events a test can make happen in this state: the internal ones XState raises itself (`xstate.done.state.*`) and wildcards are not among them. */
function drivableEvents(snapshot: AnyMachineSnapshot, outputs: Record<string, unknown[]>, events: Record<string, EventObject[]>): EventObject[] {
  const types = [...new Set(snapshot._nodes.flatMap((node) => node.ownEvents))];
  return types.flatMap((type): EventObject[] => {
    if (type.startsWith(DONE)) {
      const step = stepOf(snapshot, type.slice(DONE.length));
      return (outputs[step ?? ''] ?? [null]).map((output) => ({ type, output }) as EventObject);
    }
    if (type.startsWith(ERROR)) return [{ type, error: { ...PATH_STEP_ERROR } } as EventObject];
    if (type.startsWith(AFTER) || type === CANCEL) return [{ type }];
    if (type.startsWith('xstate.') || type.startsWith('promised.') || type === '*' || type.endsWith('.*')) return [];
    return events[type] ?? [{ type }];
  });
}

function toMove(machine: AnyStateMachine, from: AnyMachineSnapshot, event: EventObject, to: StateValue): WorkflowPathMove {
  const { type } = event;
  if (type.startsWith(DONE) || type.startsWith(ERROR)) {
    const invokeId = type.slice(type.startsWith(DONE) ? DONE.length : ERROR.length);
    const step = stepOf(from, invokeId) ?? invokeId;
    const fields = event as unknown as { output?: unknown; error?: { code: string; message: string } };
    return type.startsWith(DONE) ? { kind: 'done', step, invokeId, output: fields.output ?? null, to } : { kind: 'error', step, invokeId, error: fields.error ?? { ...PATH_STEP_ERROR }, to };
  }
  if (type.startsWith(AFTER)) {
    const after = from._nodes.flatMap((node) => node.after).find((candidate) => candidate.eventType === type);
    return { kind: 'after', delay: afterDelay(machine, after?.delay, from.context, type), to };
  }
  if (type === CANCEL) return { kind: 'cancel', to };
  return { kind: 'event', event, to };
}

/** The actor name an invocation runs: from the invoke of an active state, or a child spawned by name. */
function stepOf(snapshot: AnyMachineSnapshot, invokeId: string): string | undefined {
  const invoke = snapshot._nodes.flatMap((node) => node.invoke).find((candidate) => candidate.id === invokeId);
  if (invoke && typeof invoke.src === 'string') return invoke.src;
  const child = (snapshot.children as Record<string, { src?: unknown } | undefined>)[invokeId];
  return typeof child?.src === 'string' ? child.src : undefined;
}

function describe(start: StateValue, moves: WorkflowPathMove[]): string {
  const label = (move: WorkflowPathMove): string => {
    if (move.kind === 'done') return `${move.step} done`;
    if (move.kind === 'error') return `${move.step} failed`;
    if (move.kind === 'event') return move.event.type;
    if (move.kind === 'after') return `after ${move.delay} ms`;
    return 'cancel';
  };
  const show = (value: StateValue) => (typeof value === 'string' ? value : JSON.stringify(value));
  return [show(start), ...moves.map((move) => `(${label(move)}) ${show(move.to)}`)].join(' → ');
}

function checkedRecord<T>(value: Record<string, T[]> | undefined, option: string): Record<string, T[]> {
  if (value === undefined) return {};
  if (value === null || typeof value !== 'object' || !Object.values(value).every(Array.isArray)) {
    throw new InvalidOptionError(option, value, 'an object whose every value is an array');
  }
  return value;
}
