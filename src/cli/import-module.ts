import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { CliError, oneLine } from './exit-codes.js';

/** Extensions of TypeScript modules: Node strips the types of the first three itself (22.18+, 23.6+). */
const TYPESCRIPT = /\.(?:ts|mts|cts|tsx)$/;

/** Node's refusals of TypeScript it can only strip, not transform (enum, namespace, parameter properties). */
const NOT_ERASABLE = new Set(['ERR_UNSUPPORTED_TYPESCRIPT_SYNTAX', 'ERR_INVALID_TYPESCRIPT_SYNTAX']);

let tsxRegistered = false;

/**
 * Imports a tasks module, TypeScript included. A Node that strips types (22.18+, 23.6+, or
 * `--experimental-strip-types` on 22.6+) imports `.ts` itself. An older one loads it through
 * tsx's register API when tsx is installed where the module is (the user's project: tsx is
 * not a dependency of promised); otherwise the refusal says what to do, with exit code 2,
 * instead of Node's "Unknown file extension".
 *
 * @example
 * ```ts
 * const namespace = await importModule('/app/tasks.ts', './tasks.ts');
 * ```
 */
export async function importModule(absolute: string, shown: string): Promise<{ default?: unknown }> {
  const url = pathToFileURL(absolute).href;
  if (!TYPESCRIPT.test(absolute)) return importOrRefuse(url, shown);
  const native = Boolean((process.features as { typescript?: unknown }).typescript) && !absolute.endsWith('.tsx');
  if (!native) {
    const tsx = tsxApiNear(absolute);
    if (tsx === undefined) {
      const turnOn = stripsByDefault() ? 'let Node strip types (drop --no-experimental-strip-types)' : 'use Node 22.18 or later, run with NODE_OPTIONS=--experimental-strip-types';
      throw new CliError(
        'TASKS_MODULE_TYPESCRIPT',
        `tasks module ${shown} is TypeScript, which Node ${process.version} does not load here: ${turnOn}, install tsx in your project (npm install --save-dev tsx), or compile it to JavaScript`,
      );
    }
    if (!tsxRegistered) {
      const { register } = (await import(pathToFileURL(tsx).href)) as { register: () => unknown };
      register();
      tsxRegistered = true;
    }
  }
  return importOrRefuse(url, shown);
}

async function importOrRefuse(url: string, shown: string): Promise<{ default?: unknown }> {
  let namespace: { default?: unknown };
  try {
    namespace = (await import(url)) as { default?: unknown };
  } catch (error) {
    const code = (error as { code?: unknown })?.code;
    const hint =
      typeof code === 'string' && NOT_ERASABLE.has(code)
        ? ' (Node only strips types: write erasable TypeScript, without enum, namespace or parameter properties, or compile the module to JavaScript)'
        : '';
    throw new CliError('TASKS_MODULE_FAILED', `tasks module ${shown} failed to import: ${oneLine(String((error as Error)?.message ?? error))}${hint}`, undefined, { cause: error });
  }
  // A TypeScript module that a CommonJS package compiled to CommonJS: its `export default` is `exports.default`.
  const inner = (namespace.default as { default?: unknown } | null | undefined)?.default;
  return typeof namespace.default !== 'function' && typeof inner === 'function' ? { default: inner } : namespace;
}

/** Node 22.18+ and 23.6+ strip types unless told not to. */
function stripsByDefault(): boolean {
  const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
  return major > 23 || (major === 23 && minor >= 6) || (major === 22 && minor >= 18);
}

/** The file of tsx's ESM register API as installed for the module's own folder, or `undefined`. */
function tsxApiNear(absolute: string): string | undefined {
  try {
    // require.resolve('tsx/esm/api') would pick its CommonJS build, which cannot register the
    // ESM hooks from here: the `import` entry is read from tsx's own exports map instead.
    const manifest = createRequire(absolute).resolve('tsx/package.json');
    const exports = (JSON.parse(fs.readFileSync(manifest, 'utf8')) as { exports?: Record<string, { import?: { default?: string } }> }).exports;
    const entry = exports?.['./esm/api']?.import?.default;
    return entry === undefined ? undefined : path.join(path.dirname(manifest), entry);
  } catch {
    return undefined;
  }
}
