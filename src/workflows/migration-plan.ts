import { toJsonText } from '../json.js';
import { snapshotMismatch, type PersistedWorkflowSnapshot } from '../machines/workflow-machine.js';
import type { WorkflowRow, WorkflowTimerRow } from '../persistence/schema.js';
import type { Store } from '../persistence/store.js';
import { migratesFrom, type Definition } from './workflow-definitions.js';
import { MigrationFailure, migrateSnapshot, type MigratedWorkflow } from './workflow-migration.js';
import type { MigrationPreview } from './workflow-types.js';

/** A migration worked out, not yet written: what {@link WorkflowDriver.migrate} commits and a dry run shows. */
export interface MigrationPlan {
  migrated: MigratedWorkflow;
  /** The new snapshot, as stored. */
  snapshot: string;
}

/**
 * Works out how a stored workflow of another version moves onto the registered machine, writing
 * nothing: the snapshot, the steps handed over, started and cancelled, the timers. Throws a
 * {@link MigrationFailure} naming the stage that fails (the workflow would then fail with
 * `WORKFLOW_VERSION_MISMATCH`). The one computation both the migration and its dry run use.
 */
export function planMigration(definition: Definition, row: WorkflowRow, timers: WorkflowTimerRow[]): MigrationPlan {
  const migrated = migrateSnapshot(definition.machine, definition.migrate!, row, timers);
  const stray = migrated.started.find((started) => !definition.steps.has(started.src));
  if (stray) throw new MigrationFailure('steps', `state invoking "${stray.src}" has no step`);
  try {
    return { migrated, snapshot: toJsonText(migrated.persisted, 'snapshot') };
  } catch (error) {
    throw new MigrationFailure('context', `the upgraded snapshot cannot be stored: ${(error as Error).message}`);
  }
}

/**
 * What `start()` would do to every running workflow (of `name`, when given) with the
 * definitions registered now, as a dry run: nothing is written. The context upgrades run, so
 * they must not have effects of their own.
 */
export async function previewMigrations(store: Store, definitions: ReadonlyMap<string, Definition>, name: string | undefined): Promise<MigrationPreview[]> {
  const previews: MigrationPreview[] = [];
  for (const { id } of await store.runningWorkflows()) {
    const row = await store.getWorkflow(id);
    if (!row || row.status !== 'running' || (name !== undefined && row.name !== name)) continue;
    previews.push(await previewOne(store, definitions.get(row.name), row));
  }
  return previews;
}

async function previewOne(store: Store, definition: Definition | undefined, row: WorkflowRow): Promise<MigrationPreview> {
  const value = (JSON.parse(row.snapshot) as PersistedWorkflowSnapshot).value ?? null;
  const base = { id: String(row.id), name: row.name, fromVersion: row.version, toVersion: definition?.version ?? null, from: value };
  const none = { to: null, context: 'unchanged' as const, error: null, steps: { handedOver: [], started: [], cancelled: [] }, timers: { dropped: [], set: [] } };
  if (!definition) return { ...base, outcome: 'unregistered', ...none };
  if (row.version === definition.version) return { ...base, outcome: 'current', ...none, to: value };
  if (!migratesFrom(definition, row.version)) {
    const mismatch = snapshotMismatch(definition.machine, JSON.parse(row.snapshot));
    if (!mismatch) return { ...base, outcome: 'resume', ...none, to: value };
    return { ...base, outcome: 'fail', ...none, error: { code: 'WORKFLOW_VERSION_MISMATCH', stage: 'states', message: mismatch } };
  }
  try {
    const { migrated } = planMigration(definition, row, await store.timersOf(row.id));
    return {
      ...base,
      outcome: 'migrate',
      to: migrated.persisted.value ?? null,
      context: definition.migrate?.context ? 'upgraded' : 'unchanged',
      error: null,
      steps: {
        handedOver: migrated.transferred.map(([from, to]) => ({ from, to })),
        started: migrated.started.map(({ invokeId, src }) => ({ invokeId, step: src })),
        cancelled: migrated.dropped,
      },
      timers: { dropped: migrated.cancelledTimers, set: migrated.scheduled.map(({ id, delay }) => ({ id, delay })) },
    };
  } catch (error) {
    const stage = error instanceof MigrationFailure ? error.stage : 'states';
    const context = stage === 'context' ? 'error' : definition.migrate?.context ? 'upgraded' : 'unchanged';
    return { ...base, outcome: 'fail', ...none, context, error: { code: 'WORKFLOW_VERSION_MISMATCH', stage, message: (error as Error).message } };
  }
}
