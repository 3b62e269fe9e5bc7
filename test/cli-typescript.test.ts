// The built `promised` command loads a TypeScript tasks module (test/fixtures/cli-typed-tasks.ts):
// with Node's own type stripping where Node has it (22.18+, 23.6+), through tsx's register API
// where it does not and tsx is installed beside the module, and otherwise refuses in one line
// with exit code 2, saying what to do. The children run in a temporary folder, as a user's shell
// would: tsx reads the tsconfig.json of the folder it runs in, and this checkout's maps `promised`
// to its sources for the type checker.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { killWorkersIn, root, runCli, type CliResult } from './fixtures/cli-run.js';
import { tempDir } from './helpers/temp-db.js';
import { until } from './helpers/wait.js';

const typedTasks = path.join(root, 'test/fixtures/cli-typed-tasks.ts');
/** Node's own type stripping turned off: what a Node older than 22.18 does by default. */
const NO_STRIPPING = { NODE_OPTIONS: '--no-experimental-strip-types' };

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) killWorkersIn(dir);
});

function workspace(env: Record<string, string> = {}) {
  const dir = tempDir();
  dirs.push(dir);
  const db = path.join(dir, 'promised.db');
  return { dir, cli: (...args: string[]) => runCli([...args, '--db', db], { cwd: dir, env }) };
}

function ok(result: CliResult): string {
  expect(result.errLines.filter((line) => !/ran promise \d+ here|ExperimentalWarning|--trace-warnings/.test(line)), 'stderr').toEqual([]);
  expect(result.code, 'exit code').toBe(0);
  return result.stdout;
}

describe('a TypeScript tasks module', () => {
  for (const [label, env] of [
    ['as this Node loads it: its own type stripping, or tsx before 22.18', {}],
    ['through tsx, with type stripping off', NO_STRIPPING],
  ] as const) {
    it(`enqueue --tasks ./tasks.ts runs it here, checked by its schema (${label})`, async () => {
      const { cli } = workspace(env);
      const out = ok(await cli('enqueue', 'greet', '{"name":"ada"}', '--tasks', typedTasks, '--wait', '--json'));
      expect(JSON.parse(out)).toMatchObject({ status: 'completed', result: { greeting: 'hello ada' }, ranHere: true });
      const refused = await cli('enqueue', 'greet', '{"name":""}', '--tasks', typedTasks);
      expect(refused.code).toBe(2);
      expect(refused.errLines).toEqual([expect.stringMatching(/^promised: INVALID_PAYLOAD: value at payload\.name is invalid: the schema of task "greet" refused it: payload\.name: /)]);
      // The module's NonRetryableError is the engine's own class: no retry despite `retries: 3`.
      const failed = JSON.parse((await cli('enqueue', 'refuse', '{"reason":"no"}', '--tasks', typedTasks, '--json')).stdout) as { id: string };
      expect(JSON.parse(ok(await cli('status', failed.id, '--json')))).toMatchObject({ status: 'failed', attempts: 1, error: { code: 'FORBIDDEN' } });
    });
  }

  it('worker start ./tasks.ts runs a detached worker on it', async () => {
    const { cli } = workspace();
    expect(ok(await cli('worker', 'start', typedTasks))).toMatch(/worker started \(pid \d+\)/);
    const id = ok(await cli('enqueue', 'greet', '{"name":"grace"}')).trim();
    await until(async () => JSON.parse((await cli('status', id, '--json')).stdout).status === 'completed', 15_000, 'the worker to run the promise');
    expect(JSON.parse(ok(await cli('status', id, '--json')))).toMatchObject({ result: { greeting: 'hello grace' } });
    ok(await cli('worker', 'stop'));
  });

  it('is refused in one line, exit code 2, when this Node cannot strip types and no tsx is installed beside it', async () => {
    const { dir, cli } = workspace(NO_STRIPPING);
    // Outside the checkout: no node_modules/tsx up the tree.
    const module = path.join(dir, 'tasks.ts');
    fs.writeFileSync(module, "import type { Engine } from 'promised';\nexport default (engine: Engine): void => void engine.task('t', async () => 1);\n");
    for (const args of [['worker', 'start', './tasks.ts'], ['enqueue', 't', '--tasks', './tasks.ts']]) {
      const refused = await cli(...args);
      expect(refused.code).toBe(2);
      expect(refused.errLines).toEqual([expect.stringMatching(/^promised: TASKS_MODULE_TYPESCRIPT: tasks module \.\/tasks\.ts is TypeScript, .*install tsx in your project/)]);
      expect(refused.stderr).not.toMatch(/Unknown file extension/);
    }
    expect(fs.existsSync(path.join(dir, 'promised.db'))).toBe(false);
  });
});
