import type { AnyStateMachine } from 'xstate';
import type { Engine } from '../engine/engine.js';

/**
 * The machines of the workflows registered on `engine` now, by workflow name, read through the
 * engine's public accessors (`engine.workflowNames`, `engine.workflowMachine(name)`). The
 * inspection feed looks machines up by name whenever it needs one, so a feed created before or
 * after `engine.workflow(...)` draws the same definitions.
 */
export function workflowMachines(engine: Engine): Map<string, AnyStateMachine> {
  const machines = new Map<string, AnyStateMachine>();
  for (const name of engine.workflowNames) {
    const machine = engine.workflowMachine(name);
    if (machine) machines.set(name, machine);
  }
  return machines;
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
