// Build step (`npm run build`, after tsc): bundles the `promised` bin, dist/cli/main.js, into one
// file in place. Why: a git hook pays for every module Node resolves and reads; Kysely alone is
// ~280 ES modules (~65 ms to load on this machine), the engine's other dependencies ~45 ms more.
// One pre-linked file loads in a fraction of that. The library (dist/index.js) is not bundled.
//
// Kept outside the bundle, shared with the library so identities hold:
// - dist/errors.js: a tasks module that throws `new TimeoutError()` imported from 'promised' must
//   meet the same `PromisedError` class the engine checks with `instanceof`;
// - xstate: user workflows are machines built with the user's xstate.
// better-sqlite3, a native addon, is loaded from node_modules when a command opens a database.
import fs from 'node:fs';
import path from 'node:path';
import { build } from 'esbuild';

const dist = path.resolve(import.meta.dirname, '../dist');
const entry = path.join(dist, 'cli/main.js');
const errors = path.join(dist, 'errors.js');

await build({
  entryPoints: [entry],
  outfile: entry,
  allowOverwrite: true,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: ['xstate'],
  // Bundled CommonJS dependencies (commander, pino, cli-progress) call require() for Node's modules.
  banner: { js: "import { createRequire as __promisedCreateRequire } from 'node:module';\nconst require = __promisedCreateRequire(import.meta.url);" },
  plugins: [
    {
      // Loaded with require(), not import: importing CommonJS from ESM makes Node scan its source
      // for export names first (cjs-module-lexer), ~10 ms here for nothing.
      name: 'require-native-addon',
      setup(pluginBuild) {
        pluginBuild.onResolve({ filter: /^better-sqlite3$/ }, () => ({ path: 'better-sqlite3', namespace: 'required' }));
        pluginBuild.onLoad({ filter: /.*/, namespace: 'required' }, (args) => ({ contents: `export default __promisedCreateRequire(import.meta.url)(${JSON.stringify(args.path)});`, loader: 'js' }));
      },
    },
    {
      name: 'shared-errors',
      setup(pluginBuild) {
        pluginBuild.onResolve({ filter: /errors\.js$/ }, (args) =>
          path.resolve(args.resolveDir, args.path) === errors ? { path: '../errors.js', external: true } : undefined,
        );
      },
    },
  ],
  logLevel: 'warning',
});
// tsc's source map describes the file the bundle replaced.
fs.rmSync(`${entry}.map`, { force: true });
