import type { Engine, MigrationPreview, WorkflowEvent } from '../index.js';
import { parseJsonArgument } from './arguments.js';
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

export interface SteerOptions extends GlobalOptions {
  /** The module that registers the workflow's machine: sending an event or cancelling runs it. */
  tasks?: string;
  key?: string;
}

/**
 * Opens the engine on an existing database, with the tasks module's workflows registered when
 * one is given (an event or a cancel is decided by the machine), and closes it after `work`.
 */
async function withWorkflows<T>(options: SteerOptions, work: (engine: Engine) => Promise<T>): Promise<T> {
  const { loadTasks, registerTasks } = await import('./load-tasks.js');
  const tasks = options.tasks === undefined ? undefined : await loadTasks(options.tasks);
  const engine = await openEngine(options.db, { mustExist: true, changeCheckIntervalMs: 0 });
  try {
    if (tasks) await registerTasks(tasks, engine);
    return await work(engine);
  } finally {
    await engine.stop();
  }
}

/** `EVENT` on the command line: a JSON object with a `type`, or a bare event type (`APPROVE`). */
function eventArgument(text: string): WorkflowEvent {
  if (/^[A-Za-z_][\w.:-]*$/.test(text)) return { type: text };
  const event = parseJsonArgument(text);
  if (event === null || typeof event !== 'object' || Array.isArray(event) || typeof (event as { type?: unknown }).type !== 'string') {
    throw new CliError('INVALID_ARGUMENT', `EVENT ${JSON.stringify(text)} is neither an event type (APPROVE) nor a JSON object with a string "type"`);
  }
  return event as WorkflowEvent;
}

/** `promised workflows send ID EVENT --tasks MODULE [--key K]`: accepted, kept for a later state, or dropped. */
export async function sendCommand(id: string, eventText: string, options: SteerOptions, output: Output): Promise<number> {
  const event = eventArgument(eventText);
  const result = await withWorkflows(options, (engine) => engine.send(id, event, options.key === undefined ? {} : { key: options.key }));
  const until = result.expiresAt ? ` until ${result.expiresAt.toISOString()}` : '';
  output.result(result, () => `workflow ${id}: ${event.type} ${result.outcome}${result.outcome === 'kept' ? ` for a later state${until}` : ''} (event ${result.eventId})`);
  return EXIT.ok;
}

/** `promised workflows cancel ID --tasks MODULE`: cancelled, or compensating first (the machine handles promised.cancel). */
export async function cancelWorkflowCommand(id: string, options: SteerOptions, output: Output): Promise<number> {
  const result = await withWorkflows(options, (engine) => engine.cancelWorkflow(id));
  output.result(result, () => `workflow ${id} ${result.outcome === 'cancelled' ? 'cancelled' : 'is compensating before it ends cancelled'}`);
  return EXIT.ok;
}

/** `promised workflows pause ID` / `resume ID`: no step of it is claimed and no timer fires until resumed. */
export async function pauseWorkflowCommand(id: string, pause: boolean, options: SteerOptions, output: Output): Promise<number> {
  const changed = await withWorkflows(options, (engine) => (pause ? engine.pauseWorkflow(id) : engine.resumeWorkflow(id)));
  const state = pause ? 'paused' : 'running';
  output.result({ id, [pause ? 'paused' : 'resumed']: changed }, () => `workflow ${id} ${changed ? `is ${state}` : `was already ${state === 'paused' ? 'paused' : 'not paused'}`}`);
  return EXIT.ok;
}
