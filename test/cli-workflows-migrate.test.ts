import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { fromPromise, setup } from 'xstate';
import type { MigrationPreview } from '../src/index.js';
import { root, runCli, type CliResult } from './fixtures/cli-run.js';
import { migrate, other, releaseV2 } from './fixtures/migrate-tasks-v2.js';
import { engineBackends } from './helpers/backends.js';
import { dumpDatabase } from './helpers/db-dump.js';
import { tempDir } from './helpers/temp-db.js';
import { until } from './helpers/wait.js';
import { openEngine, stopEngine } from './helpers/workflow-engines.js';

// `promised workflows migrate --dry-run --tasks MODULE`, the built command as a child process, on
// both backends: every running workflow with what a worker started with MODULE would do to it,
// and not one row changed. Then a real start with that module does what the dry run said.

const tasksV2 = path.join(root, 'test/fixtures/migrate-tasks-v2.ts');
const placeholder = fromPromise(async () => null);

/** Version 1: work, a cooldown as long as the input says, then an approval. */
const releaseV1 = setup({
  types: { context: {} as { repo: string; cooldownMs: number }, input: {} as { repo: string; cooldownMs: number } },
  actors: { work: placeholder, ship: placeholder },
  delays: { cooldown: ({ context }) => context.cooldownMs },
}).createMachine({
  id: 'release',
  context: ({ input }) => ({ ...input }),
  initial: 'working',
  states: {
    working: { invoke: { src: 'work', input: ({ context }) => ({ repo: context.repo }), onDone: 'cooldown' } },
    cooldown: { after: { cooldown: 'approval' } },
    approval: { on: { APPROVE: 'shipping' } },
    shipping: { invoke: { src: 'ship', onDone: 'shipped' } },
    shipped: { type: 'final' },
  },
});
const v1Steps = { work: async () => 'built', ship: async () => 'shipped' };

/** Five running workflows written by version 1 (and one of a machine that did not change). */
async function seed(database: string) {
  const running = await openEngine(database);
  running.workflow('release', releaseV1, { steps: v1Steps }).workflow('other', other, { steps: {} });
  await running.start();
  const cooling = await running.startWorkflow('release', { repo: 'api', cooldownMs: 600_000 });
  const approving = await running.startWorkflow('release', { repo: 'cli', cooldownMs: 10 });
  await until(async () => (await running.getWorkflow(cooling))!.value === 'cooldown' && (await running.getWorkflow(approving))!.value === 'approval', 10_000, 'v1 workflows to settle');
  await stopEngine(running);
  // Not started: their first steps wait unclaimed.
  const idle = await openEngine(database);
  idle.workflow('release', releaseV1, { steps: v1Steps }).workflow('other', other, { steps: {} });
  const working = await idle.startWorkflow('release', { repo: 'web', cooldownMs: 600_000 });
  const legacy = await idle.startWorkflow('release', { repo: 'legacy', cooldownMs: 600_000 });
  const current = await idle.startWorkflow('other', {});
  await stopEngine(idle);
  return { cooling, approving, working, legacy, current };
}

function byId(previews: MigrationPreview[]): Record<string, MigrationPreview> {
  return Object.fromEntries(previews.map((preview) => [preview.id, preview]));
}

for (const backend of engineBackends) describe.skipIf(backend.skip)(`promised workflows migrate --dry-run on ${backend.name}`, () => {
  it('lists every running workflow with what the new version would do to it, writes nothing, and a real start then does just that', async () => {
    const database = await backend.fresh();
    const ids = await seed(database);
    const before = await dumpDatabase(database);
    const cli = (...args: string[]): Promise<CliResult> => runCli([...args, '--db', database], { cwd: tempDir() });

    const json = await cli('workflows', 'migrate', '--dry-run', '--tasks', tasksV2, '--json');
    expect(json.stderr).toBe('');
    expect(json.code, 'exit 1: one would fail').toBe(1);
    const { dryRun, workflows, summary } = JSON.parse(json.stdout) as { dryRun: boolean; workflows: MigrationPreview[]; summary: Record<string, number> };
    expect(dryRun).toBe(true);
    expect(summary).toEqual({ migrate: 2, fail: 2, resume: 0, current: 1, unregistered: 0 });
    const preview = byId(workflows);
    expect(Object.keys(preview).sort()).toEqual(Object.values(ids).sort());
    expect(preview[ids.cooling]).toMatchObject({
      name: 'release',
      outcome: 'migrate',
      from: 'cooldown',
      to: 'cooling',
      context: 'upgraded',
      error: null,
      timers: { dropped: ['xstate.after.cooldown.release.cooldown'], set: [{ id: 'xstate.after.100.release.cooling', delay: 100 }] },
    });
    expect(preview[ids.working]).toMatchObject({ outcome: 'migrate', from: 'working', to: 'building', steps: { handedOver: [{ from: '0.release.working', to: '0.release.building' }], started: [], cancelled: [] } });
    expect(preview[ids.legacy]).toMatchObject({ outcome: 'fail', from: 'working', to: null, context: 'error', error: { code: 'WORKFLOW_VERSION_MISMATCH', stage: 'context' } });
    expect(preview[ids.legacy]!.error!.message).toContain('no reviewers known for legacy');
    expect(preview[ids.approving]).toMatchObject({ outcome: 'fail', from: 'approval', context: 'upgraded', error: { stage: 'states' } });
    expect(preview[ids.approving]!.error!.message).toContain('migrate.states');
    expect(preview[ids.current]).toMatchObject({ name: 'other', outcome: 'current', from: 'waiting', to: 'waiting' });
    expect(preview[ids.cooling]!.fromVersion).not.toBe(preview[ids.cooling]!.toVersion);

    // For people: one line a workflow, the reason under each failure.
    const text = await cli('workflows', 'migrate', '--dry-run', '--tasks', tasksV2);
    expect(text.code).toBe(1);
    expect(text.stdout).toContain('dry run: nothing was written. 5 running workflows: 2 would migrate, 2 would fail, 0 resume as they are, 1 current, 0 not registered');
    expect(text.stdout).toMatch(new RegExp(`^${ids.cooling}\\s+release\\s+migrate\\s+cooldown → cooling\\s+context upgraded$`, 'm'));
    expect(text.stdout).toContain('WORKFLOW_VERSION_MISMATCH (context): the context upgrade threw: no reviewers known for legacy');

    const one = await cli('workflows', 'migrate', '--dry-run', '--tasks', tasksV2, '--name', 'other', '--json');
    expect(one.code, 'nothing of "other" would fail').toBe(0);
    expect((JSON.parse(one.stdout) as { workflows: MigrationPreview[] }).workflows.map((workflow) => workflow.id)).toEqual([ids.current]);

    expect(await dumpDatabase(database)).toEqual(before);

    // The dry run told the truth: a worker's start with the module does exactly that.
    const upgraded = await openEngine(database, { stopTimeoutMs: 100 });
    upgraded.workflow('release', releaseV2, { steps: { work: () => new Promise(() => undefined), ship: async () => 'shipped' }, migrate }).workflow('other', other, { steps: {} });
    const started = await upgraded.start();
    expect(started.workflows).toEqual({ running: 5, versionMismatches: 2 });
    for (const id of [ids.cooling, ids.working]) expect(await upgraded.getWorkflow(id)).toMatchObject({ status: 'running', value: preview[id]!.to });
    for (const id of [ids.legacy, ids.approving]) expect((await upgraded.getWorkflow(id))!.error).toMatchObject({ code: 'WORKFLOW_VERSION_MISMATCH', message: expect.stringContaining(preview[id]!.error!.message) });
    await stopEngine(upgraded);
  });

  it('refuses, exit 2 with one line and nothing written: no --dry-run, no --tasks, a name the module does not register, no database', async () => {
    const database = await backend.fresh();
    await seed(database);
    const before = await dumpDatabase(database);
    const cli = (...args: string[]): Promise<CliResult> => runCli([...args, '--db', database], { cwd: tempDir() });
    const refused = async (result: CliResult, code: string) => {
      expect(result.code, result.stderr).toBe(2);
      expect(result.stdout).toBe('');
      expect(result.errLines).toHaveLength(1);
      expect(result.errLines[0]).toMatch(new RegExp(`^promised: ${code}: `));
    };
    await refused(await cli('workflows', 'migrate', '--tasks', tasksV2), 'INVALID_ARGUMENT');
    await refused(await cli('workflows', 'migrate', '--dry-run'), 'INVALID_ARGUMENT');
    await refused(await cli('workflows', 'migrate', '--dry-run', '--tasks', tasksV2, '--name', 'nope'), 'UNKNOWN_WORKFLOW');
    await refused(await cli('workflows', 'migrate', '--dry-run', '--tasks', path.join(root, 'test/fixtures/no-such-module.ts')), 'TASKS_MODULE_NOT_FOUND');
    expect(await dumpDatabase(database)).toEqual(before);
    if (backend.name === 'SQLite') {
      const missing = path.join(tempDir(), 'missing.db');
      await refused(await runCli(['workflows', 'migrate', '--dry-run', '--tasks', tasksV2, '--db', missing]), 'DATABASE_NOT_FOUND');
    }
  });
});
