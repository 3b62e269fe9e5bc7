// 1,000 concurrent workflows of 5 steps each (no-op steps): workflows/s and peak RSS.
// Run: npm run build && node bench/workflows.js [count]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { assign, fromPromise, setup } from 'xstate';
import { createEngine } from '../dist/index.js';

const count = Number(process.argv[2] ?? 1_000);
const STEPS = ['one', 'two', 'three', 'four', 'five'];
const placeholder = fromPromise(async () => null);

// five steps in sequence; each result lands in the context
const states = Object.fromEntries(
  STEPS.map((step, index) => [
    step,
    {
      invoke: {
        src: step,
        input: ({ context }) => ({ n: context.n }),
        onDone: { target: STEPS[index + 1] ?? 'done', actions: assign({ n: ({ event }) => event.output }) },
      },
    },
  ]),
);
const machine = setup({ actors: Object.fromEntries(STEPS.map((s) => [s, placeholder])) }).createMachine({
  id: 'bench',
  context: ({ input }) => ({ n: input.n }),
  initial: 'one',
  states: { ...states, done: { type: 'final' } },
  output: ({ context }) => context.n,
});

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'promised-bench-wf-'));
const engine = await createEngine({ database: path.join(dir, 'bench.db'), concurrency: 10, changeCheckIntervalMs: 0, logger: undefined });
let stepRuns = 0;
engine.workflow('bench', machine, {
  steps: Object.fromEntries(
    STEPS.map((s) => [
      s,
      async (input) => {
        stepRuns++;
        return input.n + 1;
      },
    ]),
  ),
});
let peakRss = process.memoryUsage().rss;
const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 20);
await engine.start();
const started = performance.now();
const ids = [];
for (let i = 0; i < count; i++) ids.push(await engine.startWorkflow('bench', { n: i }));
const results = await Promise.all(ids.map((id) => engine.workflowResult(id, { timeout: 600_000 })));
const seconds = (performance.now() - started) / 1000;
clearInterval(sampler);
peakRss = Math.max(peakRss, process.memoryUsage().rss);
const correct = results.every((n, i) => n === i + STEPS.length) && stepRuns === count * STEPS.length;
await engine.stop();
fs.rmSync(dir, { recursive: true, force: true });

const figures = {
  workflows: count,
  stepsPerWorkflow: STEPS.length,
  seconds: Number(seconds.toFixed(2)),
  workflowsPerSecond: Math.round(count / seconds),
  stepsPerSecond: Math.round((count * STEPS.length) / seconds),
  peakRssMb: Math.round(peakRss / 1024 / 1024),
  correct,
};
console.log(JSON.stringify(figures));
if (!correct) process.exit(1);
