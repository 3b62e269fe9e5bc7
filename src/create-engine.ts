import { Engine } from './engine/engine.js';
import type { StatelyInspectorLike } from './inspect/attach-inspector.js';
import { resolveEngineOptions, type EngineOptions as KernelOptions } from './kernel/options.js';
import { openStore } from './persistence/open-store.js';

/** Options for {@link createEngine}. */
export interface EngineOptions extends KernelOptions {
  /** An `@statelyai/inspect` inspector that receives every promise and workflow actor (see docs/inspector.md). */
  inspect?: StatelyInspectorLike;
}

/**
 * Opens the database (creating and migrating it if needed) and returns an engine. Register
 * tasks with `engine.task`, then call `engine.start()` to resume stored work and begin. The
 * composition root: the one place that joins the engine with what watches it.
 *
 * @example
 * ```ts
 * const engine = await createEngine({ database: './promised.db', concurrency: 4 });
 * engine.task('review', async (payload) => ({ ok: true }));
 * await engine.start();
 * ```
 */
export async function createEngine(options: EngineOptions = {}): Promise<Engine> {
  const { inspect, ...engineOptions } = options;
  const resolved = resolveEngineOptions(engineOptions);
  const store = await openStore(resolved);
  const engine = new Engine(store, resolved);
  if (inspect) {
    // Loaded only when asked: the inspection feed and its session ids cost a command's start-up.
    const { attachInspector } = await import('./inspect/attach-inspector.js');
    attachInspector(engine, inspect, { database: resolved.database });
  }
  return engine;
}
