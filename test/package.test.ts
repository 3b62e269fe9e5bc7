// The package as a user gets it: `npm pack`, installed from the tarball into an empty app (its
// dependencies from the registry, nothing from this checkout, with typescript and @types/node), a strict program type-checked
// against it under both of TypeScript's package-aware resolutions, then run, and the `promised`
// bin run from the app. Slow-ish (an npm install), so it runs once for the whole file.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';

const root = path.resolve(import.meta.dirname, '..');
const INSTALL_TIMEOUT_MS = 5 * 60_000;

// The app must not see this checkout's npm settings: `npm test` exports npm_* variables (and npm
// reads npm_config_* as configuration), which would point the child npm at this project.
function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) if (!/^npm_/i.test(name)) env[name] = value;
  return { ...env, PROMISED_LOG_LEVEL: 'silent', npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false' };
}

function run(command: string, args: string[], cwd: string, timeout = 120_000): string {
  try {
    return execFileSync(command, args, { cwd, env: childEnv(), encoding: 'utf8', timeout, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (error) {
    const failed = error as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${command} ${args.join(' ')} failed in ${cwd}: ${failed.message}\n${failed.stdout ?? ''}\n${failed.stderr ?? ''}`);
  }
}

// What a user writes: every call typed through the package's own declarations. A wrong result
// throws: exit code 1. The app has Node's types at the oldest supported major, as a Node app
// would: the package's declarations name node:http, node:events, Buffer and AbortSignal (so do
// pino's, kysely's and xstate's), and they must hold on 22's types, not only on the newest.
const PROGRAM = `import { createEngine, PromisedError, type Engine, type PromiseRecord } from 'promised';

const engine: Engine = await createEngine({ database: './app.db', concurrency: 2 });
engine.task('double', async (payload: { n: number }) => ({ n: payload.n * 2 }), { retries: 1 });
await engine.start();
const id: string = await engine.enqueue('double', { n: 21 });
const result = await engine.result<{ n: number }>(id, { timeout: 30_000 });
const record: PromiseRecord | undefined = await engine.get(id);
await engine.stop();
if (result.n !== 42) throw new Error('expected 42, got ' + String(result.n));
if (record?.status !== 'completed') throw new Error('expected completed, got ' + String(record?.status));
if (!(new PromisedError('X', 'x') instanceof Error)) throw new Error('PromisedError is not an Error');
`;

function tsconfig(resolution: 'NodeNext' | 'Bundler', emit: boolean) {
  return {
    compilerOptions: {
      strict: true,
      target: 'ES2022',
      lib: ['ES2023'],
      module: resolution === 'NodeNext' ? 'NodeNext' : 'ESNext',
      moduleResolution: resolution,
      types: ['node'],
      // The declarations the package ships are checked too, not only the program.
      skipLibCheck: false,
      ...(emit ? { outDir: 'out', noEmit: false } : { noEmit: true }),
    },
    files: ['app.ts'],
  };
}

describe('the packed package, installed into a fresh app', () => {
  let work: string;
  let app: string;
  let installMs = 0;

  beforeAll(() => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'promised-package-'));
    app = path.join(work, 'app');
    fs.mkdirSync(app);
    // The build is current: the global setup ran `npm run build`.
    const packed = JSON.parse(run('npm', ['pack', '--json', '--pack-destination', work], root)) as Array<{ filename: string; files: Array<{ path: string }> }>;
    const tarball = path.join(work, packed[0]!.filename);
    const files = packed[0]!.files.map((file) => file.path);
    expect(files).toContain('LICENSE');
    expect(files).toContain('dist/cli/main.js');
    expect(files.some((file) => file.startsWith('src/') || file.startsWith('test/'))).toBe(false);

    fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'promised-package-check', private: true, type: 'module' }, null, 2));
    const started = performance.now();
    run('npm', ['install', '--no-audit', '--no-fund', tarball, 'typescript', '@types/node@22'], app, INSTALL_TIMEOUT_MS);
    installMs = performance.now() - started;
    process.stderr.write(`package test: npm install of the tarball (with typescript and @types/node) took ${(installMs / 1000).toFixed(1)} s\n`);
    fs.writeFileSync(path.join(app, 'app.ts'), PROGRAM);
  }, INSTALL_TIMEOUT_MS + 60_000);

  afterAll(() => {
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  test('installs without compiling anything (better-sqlite3 loads its prebuilt binary)', () => {
    expect(installMs).toBeGreaterThan(0);
    expect(fs.existsSync(path.join(app, 'node_modules/better-sqlite3/build'))).toBe(false);
  });

  test.each(['NodeNext', 'Bundler'] as const)('a strict program type-checks under moduleResolution %s', (resolution) => {
    const config = `tsconfig.${resolution.toLowerCase()}.json`;
    fs.writeFileSync(path.join(app, config), JSON.stringify(tsconfig(resolution, false), null, 2));
    run(path.join(app, 'node_modules/.bin/tsc'), ['-p', config], app);
  });

  test('the program runs: an engine on a temp SQLite file completes a task', () => {
    fs.writeFileSync(path.join(app, 'tsconfig.json'), JSON.stringify(tsconfig('NodeNext', true), null, 2));
    run(path.join(app, 'node_modules/.bin/tsc'), ['-p', 'tsconfig.json'], app);
    run(process.execPath, [path.join(app, 'out/app.js')], app, 60_000);
    expect(fs.existsSync(path.join(app, 'app.db'))).toBe(true);
  });

  // Reads the database the program above wrote (tests in a file run in order).
  test('the packed `promised` bin reads the same database', () => {
    const stats = JSON.parse(run('npx', ['--no-install', 'promised', 'stats', '--db', 'app.db', '--json'], app, 60_000)) as { completed: number; failed: number };
    expect(stats).toMatchObject({ completed: 1, failed: 0 });
  });

  // What a git hook pays for: on an SQLite file the bundled command must not read the chunks
  // that hold pg (esbuild marks each bundled file with a `// node_modules/...` comment).
  test('the bin reads no PostgreSQL driver for an SQLite file', () => {
    // module.registerHooks (22.15+) sees each load on this thread; the engines floor (22.14) has
    // only module.register, whose hooks run on a thread of their own: one hook serves both.
    fs.writeFileSync(
      path.join(app, 'record-loads.mjs'),
      "import fs from 'node:fs';\nexport function load(url, context, next) { if (url.startsWith('file:')) fs.appendFileSync(process.env.LOADS_FILE, url + '\\n'); return next(url, context); }\n",
    );
    fs.writeFileSync(
      path.join(app, 'loads.mjs'),
      "import module from 'node:module';\nimport { load } from './record-loads.mjs';\nif (module.registerHooks) module.registerHooks({ load });\nelse module.register('./record-loads.mjs', import.meta.url);\n",
    );
    const loadsFile = path.join(work, 'loads.txt');
    execFileSync(process.execPath, ['--import', './loads.mjs', 'node_modules/promised/dist/cli/main.js', 'stats', '--db', 'app.db'], {
      cwd: app,
      env: { ...childEnv(), LOADS_FILE: loadsFile },
      stdio: 'ignore',
      timeout: 60_000,
    });
    const loaded = fs.readFileSync(loadsFile, 'utf8').trim().split('\n');
    expect(loaded.some((url) => url.includes('/dist/cli/main.js'))).toBe(true);
    const withPg = loaded.filter((url) => /\/node_modules\/pg(-[a-z]+)?\//.test(url) || (url.includes('/dist/cli/') && /^\/\/ node_modules\/pg(-protocol|-pool)?\//m.test(fs.readFileSync(new URL(url), 'utf8'))));
    expect(withPg).toEqual([]);
    // Nor the OpenTelemetry API: nothing registered a tracer, so nothing is traced (src/kernel/tracing.ts).
    expect(loaded.filter((url) => url.includes('/node_modules/@opentelemetry/'))).toEqual([]);
  });
});
