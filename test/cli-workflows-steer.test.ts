import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { root, runCli, type CliResult } from './fixtures/cli-run.js';
import { approval } from './fixtures/steer-tasks.js';
import { engineBackends } from './helpers/backends.js';
import { dumpDatabase } from './helpers/db-dump.js';
import { tempDir } from './helpers/temp-db.js';
import { openEngine, stopEngine } from './helpers/workflow-engines.js';

// `promised workflows send | cancel | pause | resume`, the built command as a child process, on
// both backends: each does to a running workflow what the engine's call does, and a refusal is
// one line, exit 2, nothing written.

const tasks = path.join(root, 'test/fixtures/steer-tasks.ts');

for (const backend of engineBackends) describe.skipIf(backend.skip)(`promised workflows send, cancel, pause, resume on ${backend.name}`, () => {
  it('steers running workflows as the engine would, and refuses bad input writing nothing', async () => {
    const database = await backend.fresh();
    const seeding = await openEngine(database);
    seeding.workflow('approval', approval, { steps: {} });
    const [first, second, third] = [await seeding.startWorkflow('approval', {}), await seeding.startWorkflow('approval', {}), await seeding.startWorkflow('approval', {})];
    await stopEngine(seeding);
    const cli = (...args: string[]): Promise<CliResult> => runCli([...args, '--db', database], { cwd: tempDir() });
    const read = async (id: string) => {
      const engine = await openEngine(database);
      engine.workflow('approval', approval, { steps: {} });
      try {
        return (await engine.getWorkflow(id))!;
      } finally {
        await stopEngine(engine);
      }
    };

    const sent = await cli('workflows', 'send', first!, '{"type":"APPROVE","by":"ada"}', '--tasks', tasks, '--key', 'approve-1', '--json');
    expect(sent.code, sent.stderr).toBe(0);
    expect(JSON.parse(sent.stdout)).toMatchObject({ outcome: 'accepted' });
    expect(await read(first!)).toMatchObject({ status: 'completed', value: 'approved', context: { by: 'ada' } });
    // The same key again is the same event: answered, not applied twice.
    const again = await cli('workflows', 'send', first!, '{"type":"APPROVE","by":"bob"}', '--tasks', tasks, '--key', 'approve-1', '--json');
    expect(JSON.parse(again.stdout)).toMatchObject({ outcome: 'accepted', eventId: JSON.parse(sent.stdout).eventId });
    expect((await read(first!)).context).toEqual({ by: 'ada' });

    const bare = await cli('workflows', 'send', second!, 'REJECT', '--tasks', tasks);
    expect(bare.code, bare.stderr).toBe(0);
    expect(bare.stdout).toContain(`workflow ${second}: REJECT accepted`);
    expect(await read(second!)).toMatchObject({ status: 'completed', value: 'rejected' });

    expect((await cli('workflows', 'pause', third!)).stdout).toContain(`workflow ${third} is paused`);
    expect((await cli('workflows', 'pause', third!)).stdout).toContain('was already paused');
    expect(await read(third!)).toMatchObject({ status: 'running', pausedAt: expect.any(Date) });
    expect((await cli('workflows', 'resume', third!, '--json')).stdout).toContain('"resumed":true');
    expect(await read(third!)).toMatchObject({ pausedAt: null });

    const before = await dumpDatabase(database);
    const refusals: Array<[string[], RegExp]> = [
      [['workflows', 'send', third!, '{"by":"ada"}', '--tasks', tasks], /^promised: INVALID_ARGUMENT: EVENT/],
      [['workflows', 'send', third!, '{"type":', '--tasks', tasks], /^promised: INVALID_JSON: /],
      [['workflows', 'send', '999999', 'APPROVE', '--tasks', tasks], /^promised: [A-Z_]+: /],
      [['workflows', 'send', third!, 'APPROVE'], /^promised: INVALID_ARGUMENT: .*--tasks/],
      [['workflows', 'cancel', '999999', '--tasks', tasks], /^promised: [A-Z_]+: /],
    ];
    for (const [args, line] of refusals) {
      const refused = await cli(...args);
      expect(refused.code, `${args.join(' ')}: ${refused.stderr}`).toBe(2);
      expect(refused.errLines).toHaveLength(1);
      expect(refused.errLines[0]).toMatch(line);
    }
    expect(await dumpDatabase(database)).toEqual(before);

    const cancelled = await cli('workflows', 'cancel', third!, '--tasks', tasks, '--json');
    expect(cancelled.code, cancelled.stderr).toBe(0);
    expect(JSON.parse(cancelled.stdout)).toEqual({ outcome: 'cancelled' });
    expect(await read(third!)).toMatchObject({ status: 'failed', error: { code: 'CANCELLED' } });
  }, 120_000);
});
