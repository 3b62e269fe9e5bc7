import fs from 'node:fs';
import path from 'node:path';
import type { Engine } from '../index.js';
import { CliError, oneLine } from './exit-codes.js';
import { importModule } from './import-module.js';

/** A TASKS_MODULE's default export: registers tasks, periodics and workflows on the engine. */
export type RegisterTasks = (engine: Engine) => void | Promise<void>;

/** A loaded TASKS_MODULE. */
export interface TasksModule {
  /** Absolute path of the module. */
  path: string;
  register: RegisterTasks;
}

/**
 * Imports a TASKS_MODULE (JavaScript, or TypeScript: see {@link importModule}) and checks that
 * its default export is a function, before anything is opened or written: a missing file, a
 * module that throws on import, TypeScript this Node cannot load, or a module without a default
 * function is refused with exit code 2.
 *
 * @example
 * ```ts
 * const tasks = await loadTasks('./tasks.js');
 * await tasks.register(engine);
 * ```
 */
export async function loadTasks(modulePath: string): Promise<TasksModule> {
  const absolute = path.resolve(modulePath);
  if (!fs.existsSync(absolute)) {
    throw new CliError('TASKS_MODULE_NOT_FOUND', `tasks module ${modulePath} does not exist (looked for ${absolute})`);
  }
  if (fs.statSync(absolute).isDirectory()) {
    throw new CliError('TASKS_MODULE_NOT_FOUND', `tasks module ${modulePath} is a folder; name the file that default-exports (engine) => void`);
  }
  const namespace = await importModule(absolute, modulePath);
  const register = namespace.default;
  if (typeof register !== 'function') {
    throw new CliError(
      'TASKS_MODULE_INVALID',
      `tasks module ${modulePath} must default-export a function (engine) => void that registers tasks; its default export is ${describe(register)}`,
    );
  }
  return { path: absolute, register: register as RegisterTasks };
}

/** Runs the module's registration on `engine`; a registration that throws is the module's fault (exit 2). */
export async function registerTasks(tasks: TasksModule, engine: Engine): Promise<void> {
  try {
    await tasks.register(engine);
  } catch (error) {
    throw new CliError('TASKS_MODULE_FAILED', `tasks module ${tasks.path} failed while registering tasks: ${oneLine(String((error as Error)?.message ?? error))}`, undefined, {
      cause: error,
    });
  }
}

function describe(value: unknown): string {
  if (value === undefined) return 'missing';
  if (value === null) return 'null';
  return `a value of type ${typeof value}`;
}
