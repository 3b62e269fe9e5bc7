import type { Engine } from '../engine/engine.js';

/**
 * Runs `afterStart` once each `engine.start()` has resumed stored work, and `beforeStop` before
 * `engine.stop()` closes the database. Returns a function that stops calling them.
 */
export function hookEngineLifecycle(engine: Engine, hooks: { afterStart?: () => Promise<void> | void; beforeStop?: () => void }): () => void {
  let active = true;
  const start = engine.start.bind(engine);
  const stop = engine.stop.bind(engine);
  Object.defineProperty(engine, 'start', {
    configurable: true,
    writable: true,
    value: async (...args: Parameters<Engine['start']>) => {
      const summary = await start(...args);
      if (active) await hooks.afterStart?.();
      return summary;
    },
  });
  Object.defineProperty(engine, 'stop', {
    configurable: true,
    writable: true,
    value: async () => {
      if (active) hooks.beforeStop?.();
      return stop();
    },
  });
  return () => {
    active = false;
  };
}
