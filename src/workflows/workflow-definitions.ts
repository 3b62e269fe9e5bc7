import type { AnyStateMachine } from 'xstate';
import { InvalidOptionError, InvalidPayloadError } from '../errors.js';
import { toJsonText } from '../json.js';
import { actorSources, machineVersion, type MachineStep } from '../machines/workflow-machine.js';
import { integerIn, type TaskOptions } from '../kernel/options.js';
import { EventReachability } from './event-reachability.js';
import { WorkflowError } from './workflow-errors.js';
import { checkMigration } from './workflow-migration.js';
import type { WorkflowMigration, WorkflowOptions } from './workflow-types.js';

/** A registered workflow. */
export interface Definition {
  name: string;
  machine: AnyStateMachine;
  version: string;
  /** The step names: the only actors a transition may start. */
  steps: Set<string>;
  /** What the machine can reach on its own, for the kept-event rule. */
  reachability: EventReachability;
  /** How long an event is kept (ms), by default and per event type. */
  keptEvents: { ttl: number; byType: Record<string, number> };
  /** How long a cancelled workflow may compensate (ms) before it is ended. */
  compensationTimeout: number;
  /** How workflows of other versions are moved onto this machine, if at all. */
  migrate: WorkflowMigration | undefined;
}

/** Whether a stored workflow of another version is migrated (rather than checked for fit). */
export function migratesFrom(definition: Definition, version: string): boolean {
  return definition.migrate !== undefined && version !== definition.version && (definition.migrate.from === undefined || definition.migrate.from.includes(version));
}

/** How long a cancelled workflow may compensate unless the workflow says otherwise: 10 minutes. */
export const DEFAULT_COMPENSATION_TIMEOUT = 600_000;

/** How long a kept event is kept unless the workflow says otherwise. */
export const DEFAULT_KEPT_EVENT_TTL = 60_000;
const MAX_KEPT_EVENT_TTL = 365 * 24 * 3600_000;

/**
 * Checks a workflow before it is registered: an XState v5 machine whose every started actor is
 * named in `setup({ actors })` and has a step, and no step that is never started. Without
 * `stepsGiven` (a caller's definition, which names no steps) only the machine is checked.
 */
export function checkWorkflow(name: string, machine: AnyStateMachine, options: WorkflowOptions, { stepsGiven = true } = {}): Definition {
  if (typeof name !== 'string' || name.length === 0) throw new InvalidOptionError('name', name, 'a non-empty workflow name');
  if (!machine || typeof (machine as { transition?: unknown }).transition !== 'function' || !(machine as { root?: unknown }).root) {
    throw new InvalidOptionError('machine', machine, 'an XState v5 machine (createMachine or setup(...).createMachine)');
  }
  const steps = options?.steps ?? {};
  const started = actorSources(machine);
  const inline = started.find((actor) => actor.src === null);
  if (inline) {
    throw new WorkflowError(
      'WORKFLOW_STEP_MISMATCH',
      inline.how === 'invoke'
        ? `state ${inline.state} invokes an inline actor; register it by name in setup({ actors }) and give it a step`
        : `state ${inline.state} spawns an inline actor (spawnChild with logic, not a name): restored from a snapshot it would be a silent zombie; register it by name in setup({ actors }) and give it a step`,
    );
  }
  const sources = new Set(started.map((actor) => actor.src!));
  for (const src of stepsGiven ? sources : []) {
    if (!Object.hasOwn(steps, src)) throw new WorkflowError('WORKFLOW_STEP_MISMATCH', `workflow "${name}" invokes "${src}" but steps has no "${src}"`);
  }
  for (const step of Object.keys(steps)) {
    if (!sources.has(step)) throw new WorkflowError('WORKFLOW_STEP_MISMATCH', `steps.${step} is never invoked by workflow "${name}" (it invokes: ${[...sources].join(', ') || 'nothing'})`);
  }
  return {
    name,
    machine,
    version: machineVersion(machine),
    steps: new Set(Object.keys(steps)),
    reachability: new EventReachability(machine),
    keptEvents: keptEventOptions(options.keptEvents),
    migrate: checkMigration(machine, options.migrate),
    compensationTimeout: integerIn('compensationTimeout', options.compensationTimeout ?? DEFAULT_COMPENSATION_TIMEOUT, 1, MAX_KEPT_EVENT_TTL),
  };
}

function keptEventOptions(options: WorkflowOptions['keptEvents']): Definition['keptEvents'] {
  if (options === undefined) return { ttl: DEFAULT_KEPT_EVENT_TTL, byType: {} };
  if (options === null || typeof options !== 'object') throw new InvalidOptionError('keptEvents', options, 'an object { ttl, byType }');
  const ttl = integerIn('keptEvents.ttl', options.ttl ?? DEFAULT_KEPT_EVENT_TTL, 0, MAX_KEPT_EVENT_TTL);
  const byType: Record<string, number> = {};
  if (options.byType !== undefined && (options.byType === null || typeof options.byType !== 'object')) {
    throw new InvalidOptionError('keptEvents.byType', options.byType, 'an object { EVENT_TYPE: ttl }');
  }
  for (const [type, value] of Object.entries(options.byType ?? {})) byType[type] = integerIn(`keptEvents.byType.${type}`, value, 0, MAX_KEPT_EVENT_TTL);
  return { ttl, byType };
}

/** The task options of one step: `stepOptions` itself, or its entry for `step` when it is keyed by step. */
export function pickStepOptions(options: WorkflowOptions['stepOptions'], step: string): TaskOptions | undefined {
  if (!options) return undefined;
  const perStep = (options as Record<string, TaskOptions>)[step];
  if (perStep && typeof perStep === 'object') return perStep;
  const keys = Object.keys(options);
  const looksPerStep = keys.length > 0 && keys.every((key) => typeof (options as Record<string, unknown>)[key] === 'object');
  return looksPerStep ? undefined : (options as TaskOptions);
}

/**
 * Every actor a transition starts must be a step: one spawned from inline logic, spawned with
 * `spawn` inside `assign` (no action reports it), or named but without a step would be kept in
 * the snapshot and never run: a silent zombie after any restore.
 */
export function refuseUnmanagedActors(definition: Definition, step: MachineStep): void {
  const unmanaged = step.unmanaged[0];
  if (unmanaged) {
    const what = unmanaged.src === null ? 'an inline actor' : `"${unmanaged.src}" without a spawnChild action (spawn inside assign or enqueueActions)`;
    throw new WorkflowError(
      'WORKFLOW_STEP_MISMATCH',
      `workflow "${definition.name}" spawned ${what} as "${unmanaged.id}": it would never run and never finish; start steps with invoke or spawnChild("name") of an actor named in setup({ actors }) with a step`,
    );
  }
  const stray = step.started.find((started) => !definition.steps.has(started.src));
  if (stray) throw new WorkflowError('WORKFLOW_STEP_MISMATCH', `workflow "${definition.name}" started "${stray.src}" as "${stray.invokeId}", which has no step; add steps.${stray.src}`);
}

/** The snapshot as stored. Context must survive JSON: a BigInt, Map or Date in it would be lost or throw on resume. */
export function serialiseSnapshot(step: MachineStep): string {
  try {
    return toJsonText(step.persisted, 'snapshot');
  } catch (error) {
    if (error instanceof InvalidPayloadError) throw new InvalidPayloadError(error.path.replace(/^snapshot/, 'context'), error.message.replace(/^.*?: /, ''));
    throw error;
  }
}
