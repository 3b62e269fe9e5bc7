// The torture worker: a mix of chains, fan-out/fan-in graphs, workflows and a cron schedule over
// one database, killed with SIGKILL at random instants by the driver (torture.ts) and restarted.
//
//   node --import tsx test/torture/torture-worker.ts <db> <side-effect-log> <promises> <workflows>
//
// Every run enqueues the same work under idempotency keys (a no-op once stored), so a run killed
// while enqueueing is completed by the next. Handlers append one line per finished side effect
// (`done <promise id> <attempt>`) synchronously, as their last action.
import fs from 'node:fs';
import { createEngine } from '../../src/index.js';
import { pipelineMachine, pipelineSteps } from '../fixtures/pipeline-workflow.js';

const [file, log, promisesText, workflowsText] = process.argv.slice(2) as [string, string, string, string];
const total = Number(promisesText);
const workflows = Number(workflowsText);
const fd = fs.openSync(log, 'a');
const done = (id: string, attempt: number) => fs.writeSync(fd, `done ${id} ${attempt}\n`);

const engine = await createEngine({ database: file, concurrency: 8, leaseMs: 1_500, changeCheckIntervalMs: 20, cleanupIntervalMs: 0 });
engine.task('work', async (_payload: { n: number }, ctx) => {
  await new Promise((resolve) => setTimeout(resolve, 1 + Math.random() * 12));
  done(ctx.id, ctx.attempt);
});
engine.workflow('pipeline', pipelineMachine(150), {
  steps: pipelineSteps((_step, _input, ctx) => void done(ctx.id, ctx.attempt)),
});
engine.periodic('tick', '* * * * * *', (ctx) => void done(ctx.id, ctx.attempt));
await engine.start();

// Shapes, in blocks of 50: a chain of 20; a fan-out (1 → 20) with a fan-in after it; 9 loose.
const BLOCK = 50;
for (let block = 0; block * BLOCK < total; block++) {
  const k = (name: string) => `torture:${block}:${name}`;
  const graph: Record<string, { type: string; payload: { n: number }; key: string; dependsOn?: string[] }> = {};
  for (let i = 0; i < 20; i++) graph[`c${i}`] = { type: 'work', payload: { n: i }, key: k(`c${i}`), ...(i > 0 ? { dependsOn: [`c${i - 1}`] } : {}) };
  graph.root = { type: 'work', payload: { n: 0 }, key: k('root') };
  for (let i = 0; i < 19; i++) graph[`f${i}`] = { type: 'work', payload: { n: i }, key: k(`f${i}`), dependsOn: ['root'] };
  graph.join = { type: 'work', payload: { n: 0 }, key: k('join'), dependsOn: Array.from({ length: 19 }, (_, i) => `f${i}`) };
  for (let i = 0; i < 9; i++) graph[`l${i}`] = { type: 'work', payload: { n: i }, key: k(`l${i}`) };
  await engine.enqueueGraph(graph);
}
const started = new Set((await engine.listWorkflows({ limit: 10_000 })).map((w) => (w.context as { repo: string }).repo));
for (let i = 0; i < workflows; i++) if (!started.has(`repo-${i}`)) await engine.startWorkflow('pipeline', { repo: `repo-${i}` });
process.stdout.write('enqueued\n');

// Approve every workflow waiting for it (an external event), again after each restart.
const approve = async () => {
  for (const workflow of await engine.listWorkflows({ status: 'running', limit: 10_000 })) {
    if (workflow.value === 'approval') await engine.send(workflow.id, { type: 'APPROVE', by: 'torture' }).catch(() => undefined);
  }
};
engine.on('workflow', (change) => {
  if (change.value === 'approval') void engine.send(change.id, { type: 'APPROVE', by: 'torture' }).catch(() => undefined);
});
await approve();
process.once('SIGTERM', () => void engine.stop().then(() => process.exit(0)));
