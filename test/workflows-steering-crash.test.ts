import { describe, expect, it } from 'vitest';
import { engineBackends } from './helpers/backends.js';
import { kill, spawnFixture } from './helpers/child.js';
import { until } from './helpers/wait.js';
import { openEngine, readRows } from './helpers/workflow-engines.js';
import { oneStep, releaseV1, releaseV2 } from './fixtures/steering-workflows.js';

// SIGKILL at the worst moments of steering: a cancel while the step runs in the killed process
// (after a restart its late outcome is refused and it never runs again), and a migration killed
// halfway (the restart finishes it; none is upgraded twice).

for (const backend of engineBackends) describe.skipIf(backend.skip)(`steering workflows across SIGKILL on ${backend.name}`, () => {
  it('a workflow cancelled while its step runs in a process that is then killed: after a restart the step is not run again', async () => {
    const database = await backend.fresh();
    const worker = spawnFixture('steering-worker.ts', ['cancel', database]);
    let id: string;
    try {
      await until(() => worker.lines.some((line) => line.startsWith('step running ')), 30_000, `the step to run; stderr: ${worker.stderr()}`);
      id = worker.lines.find((line) => line.startsWith('step running '))!.slice('step running '.length);
      const canceller = await openEngine(database);
      canceller.workflow('one', oneStep, { steps: { work: async () => 'never' } });
      expect(await canceller.cancelWorkflow(id)).toEqual({ outcome: 'cancelled' });
    } finally {
      kill(worker.child, 'SIGKILL');
      await worker.exited;
    }
    const runs: string[] = [];
    const engine = await openEngine(database, { leaseMs: 500 });
    engine.workflow('one', oneStep, { steps: { work: async () => (runs.push('ran'), 'late outcome') } });
    await engine.start();
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const record = await engine.getWorkflow(id);
    expect(record).toMatchObject({ status: 'failed', error: { code: 'CANCELLED' } });
    expect(record!.steps.map((step) => [step.status, step.error?.code, step.result])).toEqual([['failed', 'CANCELLED', null]]);
    expect(runs).toEqual([]);
  });

  it('a migration killed halfway is finished by the next start, and no workflow is upgraded twice', async () => {
    const database = await backend.fresh();
    const writer = await openEngine(database);
    writer.workflow('release', releaseV1, { steps: {} });
    const ids: string[] = [];
    for (let n = 0; n < 12; n++) ids.push(await writer.startWorkflow('release', { n }));
    await writer.stop();

    const worker = spawnFixture('steering-worker.ts', ['migrate', database]);
    try {
      await worker.waitForLine('upgrading 5', 30_000);
    } finally {
      kill(worker.child, 'SIGKILL');
      await worker.exited;
    }
    expect(worker.lines).not.toContain('migrated');
    const upgradedBefore = (await readRows<{ version: string }>(database, 'select version from workflows')).map((row) => row.version);
    expect(new Set(upgradedBefore).size, 'killed halfway: some migrated, some not').toBe(2);

    const engine = await openEngine(database);
    engine.workflow('release', releaseV2, { steps: {}, migrate: { states: { waiting: 'holding' }, context: (old) => ({ ...(old as object), upgrades: ((old as { upgrades?: number }).upgrades ?? 0) + 1 }) } });
    await engine.start();
    for (const id of ids) {
      const record = await engine.getWorkflow(id);
      expect(record, id).toMatchObject({ status: 'running', value: 'holding', context: { upgrades: 1 } });
      expect((await engine.workflowHistory(id)).filter((line) => line.event === 'promised.migrate'), id).toHaveLength(1);
    }
  });
});
