import cliProgress from 'cli-progress';
import { pino } from 'pino';
import { createEngine } from '../create-engine.js';
import type { Engine } from '../engine/engine.js';
import type { TaskContext } from '../kernel/task-context.js';
import { displayDatabase } from './database.js';
import { demoWorkflow } from './demo-workflow.js';

const WORKFLOW = 'demo-ci';

/** The demo's two scenarios, as the seeds ran them: three reviews in parallel, and a chain. */
const REVIEWS = ['auth.py', 'api.py', 'db.py'];
const CHAIN = [
  { name: 'setup', title: 'set up the environment' },
  { name: 'tests', title: 'write the tests' },
  { name: 'run', title: 'run the tests' },
];
const STEP_MS = 300;

export interface DemoOptions {
  database: string;
  /** Where to print for people. */
  out?: NodeJS.WriteStream;
}

/**
 * `promised demo`: enqueues the demo's promises (once per run, by idempotency key), resumes an
 * interrupted run instead of starting a new one, and shows each promise's progress live.
 */
export async function runDemo(options: DemoOptions): Promise<void> {
  const out = options.out ?? process.stdout;
  // People are watching the bars: only errors go to the log.
  const logger = pino({ name: 'promised-demo', level: process.env.PROMISED_LOG_LEVEL ?? 'error' }, pino.destination(2));
  const engine = await createEngine({ database: options.database, concurrency: 4, stopTimeoutMs: 0, logger });
  registerDemoTasks(engine);

  const unfinished = (await Promise.all(['waiting', 'pending', 'in_progress'].map((status) => engine.list({ status: status as 'pending', limit: 1000 }))))
    .flat()
    .filter((record) => record.type.startsWith('demo.'));
  const running = await engine.listWorkflows({ status: 'running', name: WORKFLOW, limit: 1 });
  let ids: Array<{ id: string; label: string }>;
  let workflowId = running[0]?.id;
  if (unfinished.length > 0 || workflowId) {
    ids = unfinished
      .filter((record) => !record.type.startsWith('workflow:'))
      .sort((a, b) => Number(a.id) - Number(b.id))
      .map((record) => ({ id: record.id, label: labelOf(record.payload) }));
  } else {
    const run = (await engine.list({ type: 'demo.review', limit: 10_000 })).length / REVIEWS.length + 1;
    ids = await enqueueRun(engine, run);
    workflowId = await engine.startWorkflow(WORKFLOW, { repo: `demo-${run}` });
    out.write(
      `promised demo, run ${run}: reviewing ${REVIEWS.length} files in parallel; ${CHAIN.map((s) => s.title).join(' → ')} as dependent promises;\n` +
        `and workflow ${WORKFLOW} #${workflowId}, an XState machine: setup → tests → run, with a review in parallel\n`,
    );
  }

  const summary = await engine.start();
  if (unfinished.length > 0 || summary.workflows.running > 0) {
    out.write(
      `Resumed ${summary.resumed.total} unfinished promises from ${displayDatabase(options.database)} ` +
        `(${summary.resumed.waiting} waiting, ${summary.resumed.pending} pending, ${summary.resumed.in_progress} in progress; ` +
        `${summary.recovered} recovered from the interrupted run) and ${summary.workflows.running} workflow(s). Completed steps are not run again.\n`,
    );
  }

  const display = createDisplay(out, ids);
  // Steps of the workflow appear as they are started by its machine.
  const stepLabel = (type: string) => `${WORKFLOW} step ${type.slice(`workflow:${WORKFLOW}:`.length)}`;
  if (workflowId) {
    for (const step of (await engine.getWorkflow(workflowId))?.steps ?? []) display.add(step.id, stepLabel(step.type));
  }
  engine.on('progress', (p) => display.update(p.id, p.current, p.total, 'running'));
  engine.on('transition', (t) => {
    if (t.type.startsWith(`workflow:${WORKFLOW}:`)) display.add(t.id, stepLabel(t.type));
    display.status(t.id, t.to);
  });

  let interrupted = false;
  const onSignal = () => {
    interrupted = true;
    display.stop();
    out.write('\nInterrupted: stopping. Run `npm run demo` again to resume where it stopped.\n');
    void engine.stop().then(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  for (const { id } of ids) {
    const record = await engine.get(id);
    if (record) display.status(id, record.status, record.progress ?? undefined);
  }
  const outcomes = await Promise.allSettled([...ids.map(({ id }) => engine.result(id)), ...(workflowId ? [engine.workflowResult(workflowId)] : [])]);
  if (interrupted) return;
  display.stop();
  if (workflowId) {
    const workflow = await engine.getWorkflow(workflowId);
    out.write(`Workflow ${WORKFLOW} #${workflowId} ${workflow?.status}: ${JSON.stringify(workflow?.output)}\n`);
  }
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  const failed = outcomes.filter((outcome) => outcome.status === 'rejected').length;
  out.write(failed === 0 ? `All ${outcomes.length} promises and workflows completed.\n` : `${failed} of ${outcomes.length} failed.\n`);
  out.write(`Inspect them with: npx promised list --db ${displayDatabase(options.database)}\n`);
  await engine.stop();
}

function registerDemoTasks(engine: Engine): void {
  engine.workflow(WORKFLOW, demoWorkflow, {
    steps: {
      setupEnv: async (input: { repo: string }, ctx) => (await work(ctx, 4), `environment for ${input.repo}`),
      writeTests: async (_input: { repo: string }, ctx) => (await work(ctx, 5), '12 tests written'),
      runTests: async (_input: { repo: string }, ctx) => (await work(ctx, 5), '12 passed'),
      review: async (_input: { repo: string }, ctx) => (await work(ctx, 8), 'approved'),
    },
    stepOptions: { retries: 2, retryDelay: 500 },
  });
  engine.task('demo.review', async (payload: { file: string }, ctx) => {
    await work(ctx, 5);
    return { file: payload.file, comments: payload.file.length % 4 };
  });
  engine.task(
    'demo.code',
    async (payload: { step: string }, ctx) => {
      await work(ctx, 6);
      return { step: payload.step, ok: true };
    },
    { retries: 2, retryDelay: 500 },
  );
}

/** A second or two of visible work, in steps that honour cancellation. */
async function work(ctx: TaskContext, steps: number): Promise<void> {
  for (let step = 1; step <= steps; step++) {
    await new Promise((resolve) => setTimeout(resolve, STEP_MS));
    ctx.signal.throwIfAborted();
    ctx.progress(step, steps);
  }
}

async function enqueueRun(engine: Engine, run: number): Promise<Array<{ id: string; label: string }>> {
  const reviewIds = await engine.enqueueMany(
    REVIEWS.map((file) => ({ type: 'demo.review', payload: { file }, key: `demo:${run}:review:${file}` })),
  );
  const graph = Object.fromEntries(
    CHAIN.map((step, index) => [
      step.name,
      { type: 'demo.code', payload: { step: step.title }, key: `demo:${run}:${step.name}`, dependsOn: index === 0 ? [] : [CHAIN[index - 1]!.name] },
    ]),
  );
  const chainIds = await engine.enqueueGraph(graph);
  return [
    ...REVIEWS.map((file, index) => ({ id: reviewIds[index]!, label: `review ${file}` })),
    ...CHAIN.map((step) => ({ id: chainIds[step.name]!, label: step.title })),
  ];
}

function labelOf(payload: unknown): string {
  const value = payload as { file?: string; step?: string };
  return value.file ? `review ${value.file}` : (value.step ?? 'promise');
}

/** Bars on a terminal; one line per state change otherwise (CI logs, pipes). */
function createDisplay(out: NodeJS.WriteStream, ids: Array<{ id: string; label: string }>) {
  const labels = new Map(ids.map(({ id, label }) => [id, label]));
  const width = Math.max(26, ...ids.map(({ label }) => label.length));
  if (!out.isTTY) {
    const last = new Map<string, string>();
    return {
      add: (id: string, label: string) => void labels.set(id, label),
      update: () => undefined,
      status: (id: string, status: string) => {
        if (!labels.has(id) || last.get(id) === status) return;
        last.set(id, status);
        out.write(`#${id} ${labels.get(id)!.padEnd(width)}  ${status}\n`);
      },
      stop: () => undefined,
    };
  }
  const multibar = new cliProgress.MultiBar(
    { format: `{label} [{bar}] {state}`, barsize: 24, hideCursor: true, clearOnComplete: false, stream: out },
    cliProgress.Presets.shades_classic,
  );
  const bars = new Map(ids.map(({ id, label }) => [id, multibar.create(1, 0, { label: `#${id.padStart(3)} ${label.padEnd(width)}`, state: 'waiting' })]));
  return {
    add: (id: string, label: string) => {
      if (!bars.has(id)) bars.set(id, multibar.create(1, 0, { label: `#${id.padStart(3)} ${label.padEnd(width)}`, state: 'pending' }));
    },
    update: (id: string, current: number, total: number, state: string) => {
      bars.get(id)?.setTotal(total);
      bars.get(id)?.update(current, { state });
    },
    status: (id: string, status: string, progress?: { current: number; total: number }) => {
      const bar = bars.get(id);
      if (!bar) return;
      if (progress) bar.setTotal(progress.total);
      if (status === 'completed') bar.update(bar.getTotal(), { state: 'completed' });
      else bar.update(progress?.current ?? bar.getProgress() * bar.getTotal(), { state: status });
    },
    stop: () => multibar.stop(),
  };
}
