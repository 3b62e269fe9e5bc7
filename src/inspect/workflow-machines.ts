import type { AnyStateMachine } from 'xstate';
import type { Engine } from '../engine/engine.js';

const registries = new WeakMap<Engine, Map<string, AnyStateMachine>>();

/**
 * The machines of the workflows registered on `engine`, by workflow name. The engine has no
 * public accessor for them, so the first call wraps `engine.workflow` on this instance and
 * records every machine registered from then on: attach before registering workflows (as
 * `createEngine({ inspect })` and `promised dashboard --tasks` do), or pass the machines yourself.
 */
export function workflowMachines(engine: Engine): Map<string, AnyStateMachine> {
  let machines = registries.get(engine);
  if (machines) return machines;
  const registry = new Map<string, AnyStateMachine>();
  machines = registry;
  registries.set(engine, registry);
  const register = engine.workflow.bind(engine);
  Object.defineProperty(engine, 'workflow', {
    configurable: true,
    writable: true,
    value: (...args: Parameters<Engine['workflow']>) => {
      const result = register(...args);
      registry.set(args[0], args[1]);
      return result;
    },
  });
  return registry;
}

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
