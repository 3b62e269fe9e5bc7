import type { AnyStateMachine } from 'xstate';

/**
 * The machine definition as the Stately inspector expects it in an `@xstate.actor` frame: the
 * machine's `config` as JSON text, each function replaced by `{ type: name }` (what
 * `@statelyai/inspect` sends; guards, actions and actors then show by name).
 *
 * @example
 * ```ts
 * const text = machineDefinition(promiseMachine); // '{"id":"promise","initial":"waiting",…}'
 * ```
 */
export function machineDefinition(machine: AnyStateMachine): string {
  return JSON.stringify(machine.config, (_key, value: unknown) => (typeof value === 'function' ? { type: value.name } : value));
}
