import type { AnyStateMachine } from 'xstate';

/**
 * What a machine can reach on its own: from a step's completion (`xstate.done.actor.*`,
 * `xstate.error.actor.*`) or a timer's firing (`xstate.after.*`), following only the transitions
 * the engine itself causes (other steps finishing, timers, `always`, a region's `onDone`), never
 * another external event. Read from the machine's config once; guards are not evaluated (a
 * guarded path counts as reachable).
 */
export class EventReachability {
  readonly #byEvent = new Map<string, TransitionNode[]>();

  constructor(machine: AnyStateMachine) {
    const visit = (node: StateNodeLike) => {
      for (const [type, transitions] of node.transitions ?? []) {
        const list = this.#byEvent.get(type) ?? [];
        list.push(...transitions);
        this.#byEvent.set(type, list);
      }
      for (const child of Object.values(node.states ?? {})) visit(child);
    };
    visit(machine.root as unknown as StateNodeLike);
  }

  /** Whether, after one of `internalEvents`, a state that accepts an event of `type` can be reached without another external event. */
  reaches(internalEvents: readonly string[], type: string): boolean {
    const active = new Set<StateNodeLike>();
    const queue: StateNodeLike[] = [];
    const activate = (node: StateNodeLike) => {
      if (active.has(node)) return false;
      active.add(node);
      queue.push(node);
      return true;
    };
    // Entering a state activates its ancestors and its initial descendants (every region of a parallel state).
    const enter = (node: StateNodeLike) => {
      for (let up = node.parent; up; up = up.parent) activate(up);
      if (!activate(node)) return;
      const children = Object.values(node.states ?? {});
      if (node.type === 'parallel') children.forEach(enter);
      else if (node.type === 'history' && node.parent) Object.values(node.parent.states ?? {}).forEach(enter);
      else for (const target of node.initial?.target ?? []) enter(target);
    };
    const follow = (transition: TransitionNode) => {
      if (transition.target && transition.target.length > 0) transition.target.forEach(enter);
      else enter(transition.source);
    };
    for (const event of internalEvents) for (const transition of this.#byEvent.get(event) ?? []) follow(transition);
    while (queue.length > 0) {
      const node = queue.shift()!;
      if (accepts(node, type)) return true;
      for (const [event, transitions] of node.transitions ?? []) if (isInternal(event)) transitions.forEach(follow);
      for (const transition of node.always ?? []) follow(transition);
    }
    return false;
  }
}

/**
 * The external event types the machine in state `value` has a transition for: those of every
 * active state node, ancestors included (guards not evaluated; wildcards as written).
 */
export function awaitedEventTypes(machine: AnyStateMachine, value: unknown): string[] {
  return [...new Set(activeNodes(machine, value).flatMap(externalEventTypes))];
}

/** The state nodes active in state `value`: the root and every node the value names. */
export function activeNodes(machine: AnyStateMachine, value: unknown): StateNodeLike[] {
  const nodes: StateNodeLike[] = [];
  const visit = (node: StateNodeLike, nodeValue: unknown) => {
    nodes.push(node);
    if (typeof nodeValue === 'string') {
      const child = node.states?.[nodeValue];
      if (child) visit(child, undefined);
    } else if (nodeValue && typeof nodeValue === 'object') {
      for (const [key, childValue] of Object.entries(nodeValue)) {
        const child = node.states?.[key];
        if (child) visit(child, childValue);
      }
    }
  };
  visit(machine.root as unknown as StateNodeLike, value);
  return nodes;
}

/** The stored event types an event of `type` matches: itself, `*`, and each `prefix.*` that covers it. */
export function matchingEventTypes(type: string): string[] {
  const parts = type.split('.');
  const prefixes = parts.slice(0, -1).map((_, index) => `${parts.slice(0, index + 1).join('.')}.*`);
  return [type, '*', ...prefixes];
}

/** The external event types a state node has transitions for (`*` and `prefix.*` wildcards included). */
export function externalEventTypes(node: StateNodeLike): string[] {
  return [...(node.transitions?.keys() ?? [])].filter((type) => !type.startsWith('xstate.') && !type.startsWith('promised.'));
}

function accepts(node: StateNodeLike, type: string): boolean {
  return externalEventTypes(node).some((key) => key === type || key === '*' || (key.endsWith('.*') && type.startsWith(key.slice(0, -1))));
}

function isInternal(event: string): boolean {
  return event.startsWith('xstate.done.actor.') || event.startsWith('xstate.error.actor.') || event.startsWith('xstate.after.') || event.startsWith('xstate.done.state.');
}

interface TransitionNode {
  source: StateNodeLike;
  target?: readonly StateNodeLike[] | undefined;
}

/** The parts of an XState state node this reads. */
export interface StateNodeLike {
  id: string;
  type: string;
  invoke?: Array<{ id: string; src: unknown; input?: unknown }>;
  after?: Array<{ delay: unknown; eventType: string }>;
  parent?: StateNodeLike | undefined;
  states?: Record<string, StateNodeLike>;
  initial?: { target: readonly StateNodeLike[] } | undefined;
  transitions?: Map<string, TransitionNode[]>;
  always?: TransitionNode[] | undefined;
}
