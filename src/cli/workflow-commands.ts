import type { MigrationPreview } from '../index.js';
import { CliError, EXIT } from './exit-codes.js';
import { openEngine, type GlobalOptions } from './open-engine.js';
import type { Output } from './output.js';

export interface MigrateOptions extends GlobalOptions {
  dryRun?: boolean;
  tasks: string;
  name?: string;
}

const OUTCOMES = ['migrate', 'fail', 'resume', 'current', 'unregistered'] as const;

/**
 * `promised workflows migrate --dry-run --tasks MODULE [--name NAME]`: what a worker started with
 * MODULE would do to every running workflow (migrate it onto the new machine, fail it, resume
 * it as it is), writing nothing. Exits 1 when one would fail, so a deploy can stop before it.
 */
export async function migrateCommand(options: MigrateOptions, output: Output): Promise<number> {
  if (!options.dryRun) {
    throw new CliError(
      'INVALID_ARGUMENT',
      'workflows migrate only previews (--dry-run): running workflows are migrated when a worker with the new machine starts (promised worker start MODULE); add --dry-run to see what it would do',
    );
  }
  // The module is refused (exit 2) before the database is opened.
  const { loadTasks, registerTasks } = await import('./load-tasks.js');
  const tasks = await loadTasks(options.tasks);
  const engine = await openEngine(options.db, { mustExist: true, changeCheckIntervalMs: 0 });
  let previews: MigrationPreview[];
  try {
    await registerTasks(tasks, engine);
    if (options.name !== undefined && !engine.workflowNames.includes(options.name)) {
      throw new CliError('UNKNOWN_WORKFLOW', `--name ${options.name}: the tasks module registers no such workflow (it registers: ${engine.workflowNames.join(', ') || 'none'})`);
    }
    previews = await engine.previewWorkflowMigrations({ name: options.name });
  } finally {
    await engine.stop();
  }
  const summary = Object.fromEntries(OUTCOMES.map((outcome) => [outcome, previews.filter((preview) => preview.outcome === outcome).length]));
  output.result({ dryRun: true, workflows: previews, summary }, () => formatPreviews(previews, summary));
  return summary.fail! > 0 ? EXIT.failure : EXIT.ok;
}

function formatPreviews(previews: MigrationPreview[], summary: Record<string, number>): string {
  const show = (value: unknown) => (typeof value === 'string' ? value : JSON.stringify(value));
  const lines = [`dry run: nothing was written. ${previews.length} running workflow${previews.length === 1 ? '' : 's'}: ${OUTCOMES.map((outcome) => `${summary[outcome]} ${describeOutcome(outcome)}`).join(', ')}`];
  for (const preview of previews) {
    const where = preview.outcome === 'migrate' ? `${show(preview.from)} → ${show(preview.to)}` : show(preview.from);
    lines.push(`${preview.id.padEnd(6)} ${preview.name}  ${preview.outcome.padEnd(12)} ${where}  context ${preview.context}`);
    if (preview.error) lines.push(`       ${preview.error.code} (${preview.error.stage}): ${preview.error.message}`);
    const { handedOver, started, cancelled } = preview.steps;
    const changes = [
      ...handedOver.map((step) => `step ${step.from} handed to ${step.to}`),
      ...started.map((step) => `step ${step.step} started as ${step.invokeId}`),
      ...cancelled.map((invokeId) => `step ${invokeId} cancelled`),
      ...preview.timers.dropped.map((timer) => `timer ${timer} dropped`),
      ...preview.timers.set.map((timer) => `timer ${timer.id} set for ${timer.delay} ms`),
    ];
    if (changes.length > 0) lines.push(`       ${changes.join('; ')}`);
  }
  return lines.join('\n');
}

function describeOutcome(outcome: (typeof OUTCOMES)[number]): string {
  if (outcome === 'migrate') return 'would migrate';
  if (outcome === 'fail') return 'would fail';
  if (outcome === 'resume') return 'resume as they are';
  if (outcome === 'current') return 'current';
  return 'not registered';
}
