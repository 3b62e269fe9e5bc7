import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { createEngine } from '../src/index.js';
import { kill, spawnFixture } from './helpers/child.js';
import { tempDir } from './helpers/temp-db.js';
import { until } from './helpers/wait.js';
import { expectedOutput, pipelineMachine, pipelineSteps } from './fixtures/pipeline-workflow.js';

type Worker = ReturnType<typeof spawnFixture>;
const workers: Worker[] = [];
afterEach(() => {
  for (const worker of workers.splice(0)) kill(worker.child, 'SIGKILL');
});

function read<T>(file: string, sql: string): T[] {
  const db = new BetterSqlite3(file, { readonly: true, fileMustExist: true });
  try {
    return db.prepare(sql).all() as T[];
  } finally {
    db.close();
  }
}

const states = (file: string) => read<{ snapshot: string; status: string }>(file, 'select snapshot, status from workflows').map((row) => ({ value: JSON.parse(row.snapshot).value, status: row.status }));

describe('workflows survive SIGKILL at any point (real processes)', () => {
  it('kill mid-step, between steps, during the delay and after send returned: same output, each step once per successful attempt', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'promised.db');
    const sideFile = path.join(dir, 'effects.db');
    const start = () => {
      const worker = spawnFixture('workflow-worker.ts', [file, sideFile]);
      workers.push(worker);
      return worker;
    };
    const crash = async (worker: Worker) => {
      kill(worker.child, 'SIGKILL');
      await worker.exited;
    };
    const kills: string[] = [];

    // 1. In the middle of a step.
    let worker = start();
    await worker.waitForLine('start setupEnv a');
    await crash(worker);
    kills.push('mid-step');

    // 2. Just after a step finished its side effect (before or after its commit).
    worker = start();
    await worker.waitForLine('ready');
    const before = worker.lines.length;
    await until(() => worker.lines.slice(before).some((line) => line.startsWith('done ')), 20_000, 'a step to finish');
    await crash(worker);
    kills.push('between steps');

    // 3. During the durable delay.
    worker = start();
    await until(() => states(file).some((s) => s.value === 'cooldown'), 20_000, 'a workflow in its delay');
    await crash(worker);
    kills.push('during the delay');

    // 4. Right after an external event was accepted.
    worker = start();
    await until(() => states(file).length === 3 && states(file).every((s) => s.value === 'approval'), 20_000, 'every workflow waiting for approval');
    const sender = await createEngine({ database: file, changeCheckIntervalMs: 0 });
    sender.workflow('pipeline', pipelineMachine(400), { steps: pipelineSteps(), stepOptions: { retries: 5, retryDelay: 20 } });
    const ids = read<{ id: number }>(file, 'select id from workflows order by id').map((row) => String(row.id));
    for (const id of ids) await sender.send(id, { type: 'APPROVE', by: 'tester' });
    await sender.stop();
    await crash(worker);
    kills.push('after send returned');

    // 5. Run to the end.
    worker = start();
    await until(() => states(file).every((s) => s.status === 'completed'), 30_000, 'every workflow to complete');
    kill(worker.child, 'SIGTERM');
    await worker.exited;

    const workflows = read<{ input: string; output: string }>(file, 'select input, output from workflows order by id');
    for (const workflow of workflows) {
      const repo = JSON.parse(workflow.input).repo as string;
      expect(JSON.parse(workflow.output)).toEqual(expectedOutput(repo, 'tester'));
    }
    const steps = read<{ id: number; type: string; status: string; attempts: number; workflow_id: number }>(file, `select id, type, status, attempts, workflow_id from promises where workflow_id is not null`);
    const effects = read<{ step: string; repo: string; promise_id: number; attempt: number }>(sideFile, 'select * from effects');
    // Five steps per workflow, each completed exactly once (no step promise left over or doubled).
    expect(steps.filter((s) => s.status === 'completed')).toHaveLength(15);
    expect(steps.every((s) => s.status === 'completed')).toBe(true);
    for (const step of steps) {
      const successful = effects.filter((e) => e.promise_id === step.id && e.attempt === step.attempts);
      expect(successful, `step promise ${step.id} (${step.type})`).toHaveLength(1);
    }
    const reruns = effects.length - steps.length;
    console.log(`workflow crash test: ${kills.length} kills (${kills.join(', ')}), ${steps.length} steps, ${effects.length} side effects (${reruns} from attempts interrupted by a kill)`);
    expect(reruns).toBeLessThanOrEqual(kills.length * 4);
  });
});
