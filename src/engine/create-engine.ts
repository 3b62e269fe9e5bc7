import { openStore } from '../persistence/open-store.js';
import { Engine } from './engine.js';
import { resolveEngineOptions, type EngineOptions } from './options.js';

/**
 * Opens the database (creating and migrating it if needed) and returns an engine. Register
 * tasks with `engine.task`, then call `engine.start()` to resume stored work and begin.
 *
 * @example
 * ```ts
 * const engine = await createEngine({ database: './promised.db', concurrency: 4 });
 * engine.task('review', async (payload) => ({ ok: true }));
 * await engine.start();
 * ```
 */
export async function createEngine(options: EngineOptions = {}): Promise<Engine> {
  const resolved = resolveEngineOptions(options);
  const store = await openStore(resolved);
  const engine = new Engine(store, resolved);
  if (options.inspect) (await import('../inspect/attach-inspector.js')).attachInspector(engine, options.inspect, { database: resolved.database });
  return engine;
}
