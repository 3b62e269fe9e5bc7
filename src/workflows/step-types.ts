/**
 * The one owner of the `workflow:` prefix: a workflow's step runs as a promise of type
 * `workflow:<workflow>:<step>`. Nothing else builds or parses these names.
 */
const PREFIX = 'workflow:';

/** The task type of a workflow's step. */
export function stepType(workflow: string, step: string): string {
  return `${PREFIX}${workflow}:${step}`;
}

/** True when `type` is the type of a step of a workflow (of `workflow`, when given). */
export function isStepType(type: string, workflow?: string): boolean {
  return type.startsWith(workflow === undefined ? PREFIX : `${PREFIX}${workflow}:`);
}

/** The step name of a step type of `workflow`, e.g. `runTests` for `workflow:ci:runTests`. */
export function stepNameOf(type: string, workflow: string): string {
  return type.slice(`${PREFIX}${workflow}:`.length);
}
