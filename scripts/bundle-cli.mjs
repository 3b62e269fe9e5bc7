// Build step (`npm run build`, after tsc): bundles the `promised` bin, dist/cli/main.js, in place.
// Why: a git hook pays for every module Node resolves and reads; Kysely alone is ~280 ES modules
// (~65 ms to load on this machine), the engine's other dependencies ~45 ms more. Pre-linked files
// load in a fraction of that. The library (dist/index.js) is not bundled.
//
// Split, not one file: main.js holds only the command line (commander and the argument parsers);
// each command's `await import()` becomes a chunk beside it, read when that command runs. One
// 1.6 MB file made every command parse all of it, and its hoisted imports of Node's modules loaded
// http, http2, tls, crypto and zlib before `promised stats` did anything. Split, pg and its driver
// sit in chunks that only a postgres:// URL reaches, and the chunks are loaded after main.ts has
// enabled Node's compile cache, so from the second run on they are not compiled again.
//
// Kept outside the bundle, shared with the library so identities hold:
// - dist/errors.js: a tasks module that throws `new TimeoutError()` imported from 'promised' must
//   meet the same `PromisedError` class the engine checks with `instanceof`;
// - xstate: user workflows are machines built with the user's xstate.
// - @opentelemetry/api: a tasks module registers its SDK through the API copy npm deduplicated
//   with the package's; a copy inlined here would be a second one, ignored by (or ignoring) a
//   registration of another minor version.
// better-sqlite3, a native addon, is loaded from node_modules when a command opens a database.
import fs from 'node:fs';
import { isBuiltin } from 'node:module';
import path from 'node:path';
import { build } from 'esbuild';

const dist = path.resolve(import.meta.dirname, '../dist');
const cli = path.join(dist, 'cli');
const entry = path.join(cli, 'main.js');
const errors = path.join(dist, 'errors.js');

/** A CommonJS stand-in for a built-in module, read on first use (see the plugin below). */
function builtinStandIn(name, withNames) {
  // A module that is itself a class (events, assert, ...) is extended and called: a proxy of a
  // plain object is neither. Its properties load nothing, so it is taken as it is.
  if (typeof process.getBuiltinModule(name) === 'function') return `module.exports = process.getBuiltinModule(${JSON.stringify(name)});`;
  return `let loaded;
const load = () => (loaded ??= process.getBuiltinModule(${JSON.stringify(name)}));
module.exports = new Proxy({}, {
  get: (_target, property) => load()[property],
  ownKeys: () => ${withNames ? 'Reflect.ownKeys(load())' : '[]'},
  getOwnPropertyDescriptor: () => ({ configurable: true, enumerable: true, writable: false, value: undefined }),
});`;
}

const result = await build({
  entryPoints: [entry],
  outdir: cli,
  // Chunks go beside main.js, not in a subfolder: the code in them finds the dashboard's files
  // and dist/errors.js by paths relative to dist/cli, as it did from the single file.
  entryNames: '[name]',
  chunkNames: '[name]-[hash]',
  allowOverwrite: true,
  bundle: true,
  splitting: true,
  metafile: true,
  platform: 'node',
  format: 'esm',
  target: 'node22',
  external: ['xstate', '@opentelemetry/api'],
  // Bundled CommonJS dependencies (pino, cli-progress, pg) call require() for Node's modules.
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
      // Node's own modules fetched with `process.getBuiltinModule()` when first used, not
      // imported. An ESM import of a built-in builds a module facade by reading every property,
      // and that runs the lazy getters behind them: `util` loads parseArgs, diff and worker
      // threads, `fs` its promises API, `process` its report; commander's `child_process` loads
      // net, dgram and streams, for executable subcommands `promised` has none of. About 15 ms of
      // every command's start-up, for properties nothing reads. So each built-in is a CommonJS
      // stand-in: a proxy that names the module's properties without reading them (esbuild's
      // interop copies names as getters) and reads the module on first use.
      name: 'builtins-on-use',
      setup(pluginBuild) {
        pluginBuild.onResolve({ filter: /^[a-z_:/]+$/ }, (args) => {
          if (!isBuiltin(args.path)) return undefined;
          const name = args.path.startsWith('node:') ? args.path : `node:${args.path}`;
          // Commander imports child_process by default only, so its stand-in names nothing and
          // loading it waits for a real use.
          const defaultOnly = name === 'node:child_process' && /[\\/]node_modules[\\/]commander[\\/]/.test(args.importer);
          return { path: name, namespace: defaultOnly ? 'builtin-default' : 'builtin' };
        });
        for (const namespace of ['builtin', 'builtin-default']) {
          pluginBuild.onLoad({ filter: /.*/, namespace }, (args) => ({ contents: builtinStandIn(args.path, namespace === 'builtin'), loader: 'js' }));
        }
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

// What tsc wrote in dist/cli is now inside the bundle: remove it (and its maps and declarations),
// so the package ships one copy of the command line and nothing imports a stale module.
const outputs = new Set(Object.keys(result.metafile.outputs).map((file) => path.resolve(file)));
for (const name of fs.readdirSync(cli)) {
  const file = path.join(cli, name);
  if (!outputs.has(file)) fs.rmSync(file, { recursive: true, force: true });
}
