import { initialTransition, transition, type AnyStateMachine, type EventObject } from 'xstate';

/**
 * Drives a user's XState v5 machine one event at a time from its persisted snapshot, with the
 * pure `transition()`: nothing is started, no timer is armed, no step runs. What the machine
 * asked for comes back as data (steps to start or stop, delayed events to store or cancel), and
 * the durable runtime turns it into rows. Knows XState; knows nothing of SQL.
 *
 * Why not a live actor: a restored actor re-runs in-flight `fromPromise` steps, forgets `after`
 * timers (statelyai/xstate#5331), and its root does not notify when only a child moves.
 */

/** A step the machine started: an invocation of a named actor. */
export interface StartedStep {
  invokeId: string;
  src: string;
  input: unknown;
}

/** A delayed event the machine scheduled (`after`, or a delayed `raise`). */
export interface ScheduledEvent {
  id: string;
  event: EventObject;
  delay: number;
}

export interface MachineStep {
  /** The persisted snapshot to store (JSON-safe if the user's context is). */
  persisted: PersistedWorkflowSnapshot;
  status: 'active' | 'done' | 'error' | 'stopped';
  value: unknown;
  context: unknown;
  output: unknown;
  error: unknown;
  started: StartedStep[];
  /** Invocations the transition stopped (their state was exited). */
  stopped: string[];
  scheduled: ScheduledEvent[];
  cancelled: string[];
  /**
   * Children in the new snapshot that no step stands for: spawned from inline logic (`src`
   * null), or spawned without a `spawnChild` action (`spawn` inside `assign`), which the pure
   * `transition()` never reports. Restored from a snapshot, each would be a silent zombie.
   */
  unmanaged: Array<{ id: string; src: string | null }>;
}

export interface PersistedWorkflowSnapshot {
  status: string;
  value: unknown;
  context: unknown;
  children?: Record<string, { src: unknown; snapshot: unknown; syncSnapshot?: boolean; systemId?: string }>;
  output?: unknown;
  error?: unknown;
  [key: string]: unknown;
}

/** The machine's first state for `input`, and what it asked for. */
export function initialWorkflowStep(machine: AnyStateMachine, input: unknown): MachineStep {
  const [snapshot, actions] = initialTransition(machine, input);
  return describeStep(machine, snapshot, actions, {});
}

/** Applies one event to a persisted snapshot. Throws if the snapshot no longer fits the machine. */
export function applyWorkflowEvent(machine: AnyStateMachine, persisted: PersistedWorkflowSnapshot, event: EventObject): MachineStep {
  const previous = hydrate(machine, persisted);
  const [snapshot, actions] = transition(machine, previous, event);
  return describeStep(machine, snapshot, actions, previous.children as Record<string, unknown>);
}

/** Whether the machine, in this stored state, has a transition for `event` (else XState would drop it). */
export function acceptsWorkflowEvent(machine: AnyStateMachine, persisted: PersistedWorkflowSnapshot, event: EventObject): boolean {
  return hydrate(machine, persisted).can(event);
}

/**
 * Why a stored snapshot cannot be resumed by this machine (a state or a step that no longer
 * exists), or `null` when it fits.
 */
export function snapshotMismatch(machine: AnyStateMachine, persisted: PersistedWorkflowSnapshot): string | null {
  try {
    machine.resolveState({ value: persisted.value as never, context: {} });
  } catch (error) {
    return (error as Error).message;
  }
  const actors = (machine.implementations.actors ?? {}) as Record<string, unknown>;
  for (const [id, child] of Object.entries(persisted.children ?? {})) {
    if (typeof child.src !== 'string' || !(child.src in actors)) return `invocation ${id} runs ${JSON.stringify(child.src)}, which the machine no longer has`;
  }
  return null;
}

/** A fingerprint of the machine's structure: a stored snapshot written by another one is checked before use. */
export function machineVersion(machine: AnyStateMachine): string {
  // node:crypto is loaded when a workflow is registered, not by every command that imports the engine.
  return process.getBuiltinModule('node:crypto').createHash('sha256').update(JSON.stringify(machine.definition)).digest('hex').slice(0, 16);
}

/** An actor the machine starts: by `invoke`, or by a `spawnChild` action it names in its config. */
export interface ActorSource {
  /** The state node that starts it. */
  state: string;
  how: 'invoke' | 'spawn';
  /** Its name in `setup({ actors })`, or `null` for inline logic. */
  src: string | null;
}

/**
 * Every actor the machine starts that can be seen in its config: each `invoke`, and each
 * `spawnChild(...)` among the entry, exit and transition actions (also when named in
 * `setup({ actions })`). Inline logic (no name) cannot be restored from a snapshot: XState brings
 * it back as a silent zombie (its `src` becomes `{}` in JSON, it never runs nor finishes), so it
 * is reported as `null`. A `spawn` inside `assign` or `enqueueActions` cannot be seen here; the
 * runtime catches it from the transition ({@link MachineStep.unmanaged}).
 */
export function actorSources(machine: AnyStateMachine): ActorSource[] {
  const found: ActorSource[] = [];
  const named = (machine.implementations.actions ?? {}) as Record<string, unknown>;
  const spawnOf = (action: unknown, depth = 0): { src: unknown } | undefined => {
    if (depth > 4 || !action) return undefined;
    if (typeof action === 'string') return spawnOf(named[action], depth + 1);
    const type = (action as { type?: unknown }).type;
    if (type === 'xstate.spawnChild') return action as { src: unknown };
    if (typeof action === 'object' && typeof type === 'string') return spawnOf(named[type], depth + 1);
    return undefined;
  };
  const visit = (node: StateNodeLike) => {
    // Inline invoke logic is registered by XState under a generated `xstate.invoke.*` name.
    for (const invoke of node.invoke ?? []) {
      found.push({ state: node.id, how: 'invoke', src: typeof invoke.src === 'string' && !invoke.src.startsWith('xstate.invoke.') ? invoke.src : null });
    }
    const transitions = [...(node.transitions?.values() ?? [])].flat().concat(node.always ?? []);
    const actions = [...(node.entry ?? []), ...(node.exit ?? []), ...transitions.flatMap((t) => t.actions ?? [])];
    for (const action of actions) {
      const spawn = spawnOf(action);
      if (spawn) found.push({ state: node.id, how: 'spawn', src: typeof spawn.src === 'string' ? spawn.src : null });
    }
    for (const child of Object.values(node.states ?? {})) visit(child);
  };
  visit(machine.root as unknown as StateNodeLike);
  return found;
}

interface StateNodeLike {
  id: string;
  invoke?: Array<{ src: unknown }>;
  entry?: unknown[];
  exit?: unknown[];
  always?: Array<{ actions?: unknown[] }>;
  transitions?: Map<string, Array<{ actions?: unknown[] }>>;
  states?: Record<string, StateNodeLike>;
}

// The snapshot from JSON, its children replaced by inert stand-ins: restoring the real child
// actors would need a live parent and would start them.
function hydrate(machine: AnyStateMachine, persisted: PersistedWorkflowSnapshot) {
  const snapshot = machine.restoreSnapshot!({ ...persisted, children: {} } as never, undefined as never) as ReturnType<AnyStateMachine['resolveState']>;
  const children: Record<string, unknown> = {};
  for (const [id, child] of Object.entries(persisted.children ?? {})) {
    children[id] = {
      id,
      sessionId: `persisted:${id}`,
      src: child.src,
      systemId: child.systemId,
      _syncSnapshot: child.syncSnapshot,
      getSnapshot: () => child.snapshot,
      getPersistedSnapshot: () => child.snapshot,
    };
  }
  (snapshot as unknown as { children: Record<string, unknown> }).children = children;
  return snapshot;
}

interface ExecutableAction {
  type: string;
  params?: any;
  info?: unknown;
  exec?: (info: unknown, params: unknown) => void;
}

function describeStep(machine: AnyStateMachine, snapshot: any, actions: readonly unknown[], previousChildren: Record<string, unknown>): MachineStep {
  const started: StartedStep[] = [];
  const stopped: string[] = [];
  const scheduled: ScheduledEvent[] = [];
  const cancelled: string[] = [];
  for (const action of actions as ExecutableAction[]) {
    const params = action.params;
    switch (action.type) {
      case 'xstate.spawnChild':
        // A child spawned and stopped within the same macrostep is not in the next snapshot.
        if (params?.actorRef && snapshot.children[params.actorRef.id] === params.actorRef && typeof params.src === 'string') {
          started.push({ invokeId: params.actorRef.id, src: params.src, input: params.input });
        }
        break;
      case 'xstate.stopChild':
        if (params && previousChildren[params.id] === params) stopped.push(params.id);
        break;
      case 'xstate.raise':
      case 'xstate.sendTo':
        if (typeof params?.delay === 'number') scheduled.push({ id: params.id, event: params.event, delay: params.delay });
        break;
      case 'xstate.cancel':
        cancelled.push(params.sendId);
        break;
      default:
        // The user's own actions (and `assign`, already applied) run now, once per transition.
        if (!action.type.startsWith('xstate.')) action.exec?.(action.info, action.params);
    }
  }
  const accounted = new Set([...Object.keys(previousChildren), ...started.map((step) => step.invokeId)]);
  const unmanaged = Object.entries(snapshot.children as Record<string, { src: unknown }>)
    .filter(([id]) => !accounted.has(id))
    .map(([id, child]) => ({ id, src: typeof child.src === 'string' ? child.src : null }));
  let persisted: PersistedWorkflowSnapshot;
  try {
    persisted = machine.getPersistedSnapshot(snapshot) as PersistedWorkflowSnapshot;
  } catch (error) {
    // XState's development build refuses to persist an inline child (its production build
    // writes `src: {}`, the zombie). Such a step is refused by the runtime and never stored.
    if (unmanaged.length === 0) throw error;
    persisted = { status: snapshot.status, value: snapshot.value, context: null };
  }
  return {
    persisted,
    status: snapshot.status,
    value: snapshot.value,
    context: snapshot.context,
    output: snapshot.output,
    error: snapshot.error,
    started,
    stopped,
    scheduled,
    cancelled,
    unmanaged,
  };
}
