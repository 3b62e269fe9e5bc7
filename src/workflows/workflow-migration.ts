import type { AnyStateMachine, EventObject } from 'xstate';
import { InvalidOptionError } from '../errors.js';
import type { PersistedWorkflowSnapshot } from '../machines/workflow-machine.js';
import type { WorkflowRow, WorkflowTimerRow } from '../persistence/schema.js';
import { activeNodes, type StateNodeLike } from './event-reachability.js';
import type { WorkflowMigration } from './workflow-types.js';

/** The event type of the history line a migration writes. */
export const MIGRATE_EVENT = 'promised.migrate';

/** Where a migration failed: the state map, the context upgrade, a step, a timer. */
export type MigrationStage = 'states' | 'context' | 'steps' | 'timers';

/** Why a stored workflow cannot be moved onto the registered machine (it then fails with `WORKFLOW_VERSION_MISMATCH`). */
export class MigrationFailure extends Error {
  constructor(
    readonly stage: MigrationStage,
    message: string,
  ) {
    super(message);
  }
}

/** A running workflow of an older version, moved onto the registered machine. */
export interface MigratedWorkflow {
  /** The new persisted snapshot (children included). */
  persisted: PersistedWorkflowSnapshot;
  /** Old invocations whose step promise now runs a new invocation: `[from, to]`. */
  transferred: Array<[string, string]>;
  /** Old invocations that no active state runs any more: their steps are cancelled. */
  dropped: string[];
  /** New invocations to start as steps. */
  started: Array<{ invokeId: string; src: string; input: unknown }>;
  /** Stored timers whose state is no longer active (by timer id). */
  cancelledTimers: string[];
  /** `after` timers of active states not set yet. */
  scheduled: Array<{ id: string; event: EventObject; delay: number }>;
}

/** Checks a `migrate` option at registration: every state it maps to must exist in the new machine. */
export function checkMigration(machine: AnyStateMachine, migrate: WorkflowMigration | undefined): WorkflowMigration | undefined {
  if (migrate === undefined) return undefined;
  if (migrate === null || typeof migrate !== 'object') throw new InvalidOptionError('migrate', migrate, 'an object { states, context, from }');
  for (const [from, to] of Object.entries(migrate.states ?? {})) {
    if (from.length === 0 || typeof to !== 'string' || !nodeAt(machine, to)) {
      throw new InvalidOptionError(`migrate.states.${from}`, to, `a state of the new machine, as a dotted path from its root (for example "${stateNames(machine).join('", "')}")`);
    }
  }
  if (migrate.context !== undefined && typeof migrate.context !== 'function') throw new InvalidOptionError('migrate.context', migrate.context, 'a function (context, { value, version }) => new context');
  if (migrate.from !== undefined && (!Array.isArray(migrate.from) || !migrate.from.every((version) => typeof version === 'string'))) {
    throw new InvalidOptionError('migrate.from', migrate.from, 'an array of machine versions (getWorkflow(id).version)');
  }
  return migrate;
}

/**
 * Moves a stored snapshot of an older version onto `machine`: each active state path is renamed
 * by the longest entry of `states` that is it or a prefix of it, the context is upgraded, and the
 * result must be a state of the new machine. Invocations of the new states keep a running step
 * with their id (or, failing that, one of the same actor), else start one; timers of states no
 * longer active are dropped and those of new states set. Throws (with why) when it cannot.
 */
export function migrateSnapshot(machine: AnyStateMachine, migrate: WorkflowMigration, row: WorkflowRow, timers: WorkflowTimerRow[]): MigratedWorkflow {
  const old = JSON.parse(row.snapshot) as PersistedWorkflowSnapshot;
  const paths = leafPaths(old.value).map((path) => renamed(path, migrate.states ?? {}));
  let context: unknown;
  try {
    context = migrate.context ? migrate.context(old.context, { value: old.value, version: row.version }) : old.context;
  } catch (error) {
    throw new MigrationFailure('context', `the context upgrade threw: ${(error as Error)?.message ?? String(error)}`);
  }
  let resolved: ReturnType<AnyStateMachine['resolveState']>;
  try {
    resolved = machine.resolveState({ value: valueOf(paths) as never, context: context as never });
  } catch (error) {
    throw new MigrationFailure('states', `state ${JSON.stringify(old.value)} maps to ${JSON.stringify(valueOf(paths))}, which the new machine lacks (${(error as Error).message}); add it to migrate.states`);
  }
  const nodes = activeNodes(machine, resolved.value);
  const oldChildren = Object.entries(old.children ?? {});
  const children: NonNullable<PersistedWorkflowSnapshot['children']> = {};
  const migrated: MigratedWorkflow = { persisted: {} as PersistedWorkflowSnapshot, transferred: [], dropped: [], started: [], cancelledTimers: [], scheduled: [] };
  const taken = new Set<string>();
  for (const node of nodes) {
    for (const invoke of node.invoke ?? []) {
      const src = String(invoke.src);
      const same = oldChildren.find(([id, child]) => id === invoke.id && child.src === src && !taken.has(id));
      const alike = same ?? oldChildren.find(([id, child]) => child.src === src && !taken.has(id) && !nodes.some((n) => n.invoke?.some((i) => i.id === id)));
      if (alike) {
        taken.add(alike[0]);
        children[invoke.id] = alike[1];
        if (alike[0] !== invoke.id) migrated.transferred.push([alike[0], invoke.id]);
        continue;
      }
      let input: unknown;
      try {
        input = typeof invoke.input === 'function' ? invoke.input({ context, event: { type: MIGRATE_EVENT }, self: undefined }) : invoke.input;
      } catch (error) {
        throw new MigrationFailure('steps', `the input of step "${src}" (invocation ${invoke.id}) threw on the upgraded context: ${(error as Error)?.message ?? String(error)}`);
      }
      children[invoke.id] = { src, snapshot: { status: 'active', input }, syncSnapshot: false };
      migrated.started.push({ invokeId: invoke.id, src, input: input ?? null });
    }
  }
  migrated.dropped = oldChildren.map(([id]) => id).filter((id) => !taken.has(id));
  const afters = nodes.flatMap((node) => node.after ?? []);
  migrated.cancelledTimers = timers.map((timer) => timer.timer_id).filter((id) => id.startsWith('xstate.after.') && !afters.some((after) => after.eventType === id));
  for (const after of afters) {
    if (timers.some((timer) => timer.timer_id === after.eventType)) continue;
    let delay: number;
    try {
      delay = afterDelay(machine, after.delay, context, after.eventType);
    } catch (error) {
      throw new MigrationFailure('timers', (error as Error).message);
    }
    migrated.scheduled.push({ id: after.eventType, event: { type: after.eventType }, delay });
  }
  migrated.persisted = { ...(machine.getPersistedSnapshot(resolved) as PersistedWorkflowSnapshot), children };
  return migrated;
}

/** The ms of an `after` delay: a number, or a named delay of the machine's implementations (a function of the context). */
export function afterDelay(machine: AnyStateMachine, delay: unknown, context: unknown, eventType: string): number {
  const named = typeof delay === 'string' ? (machine.implementations.delays as Record<string, unknown>)[delay] : delay;
  const value = typeof named === 'function' ? named({ context, event: { type: MIGRATE_EVENT } }, undefined) : named;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) throw new Error(`cannot set the timer ${eventType}: its delay ${JSON.stringify(delay)} is not a number of ms`);
  return value;
}

/** `a.b.c` paths of every active leaf of a state value. */
function leafPaths(value: unknown, prefix = ''): string[] {
  if (typeof value === 'string') return [prefix + value];
  if (!value || typeof value !== 'object') return [];
  const paths = Object.entries(value).flatMap(([key, child]) => {
    const nested = leafPaths(child, `${prefix}${key}.`);
    return nested.length > 0 ? nested : [prefix + key];
  });
  return paths;
}

/** The path renamed by the longest map entry that is it or a prefix of it at a dot. */
function renamed(path: string, states: Record<string, string>): string {
  let best: string | undefined;
  for (const from of Object.keys(states)) {
    if ((path === from || path.startsWith(`${from}.`)) && (best === undefined || from.length > best.length)) best = from;
  }
  // A mapped state's old descendants are not the new one's: it starts at its initial state.
  return best === undefined ? path : states[best]!;
}

/** A state value from dotted leaf paths (`['a.b', 'a.c.d']` → `{ a: { b: {}, c: 'd' } }`, one leaf → a string). */
function valueOf(paths: string[]): unknown {
  type Tree = { [key: string]: Tree };
  const tree: Tree = {};
  for (const path of paths) {
    let level = tree;
    for (const part of path.split('.')) level = level[part] ??= {};
  }
  const toValue = (level: Tree): unknown => {
    const keys = Object.keys(level);
    if (keys.length === 1 && Object.keys(level[keys[0]!]!).length === 0) return keys[0];
    return Object.fromEntries(keys.map((key) => [key, Object.keys(level[key]!).length === 0 ? {} : toValue(level[key]!)]));
  };
  return toValue(tree);
}

function nodeAt(machine: AnyStateMachine, path: string): StateNodeLike | undefined {
  let node: StateNodeLike | undefined = machine.root as unknown as StateNodeLike;
  for (const part of path.split('.')) node = node?.states?.[part];
  return node;
}

function stateNames(machine: AnyStateMachine): string[] {
  return Object.keys((machine.root as unknown as StateNodeLike).states ?? {});
}
