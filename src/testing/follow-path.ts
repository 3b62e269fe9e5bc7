import { isDeepStrictEqual } from 'node:util';
import { NonRetryableError, PromisedError } from '../errors.js';
import type { Engine } from '../engine/engine.js';
import type { TaskContext } from '../kernel/task-context.js';
import { actorSources } from '../machines/workflow-machine.js';
import { stepType } from '../workflows/step-types.js';
import type { WorkflowEvent, WorkflowRecord } from '../workflows/workflow-types.js';
import type { WorkflowPath, WorkflowPathMove } from './workflow-paths.js';

/** What {@link followPath} needs of a test engine. */
export interface PathDriver extends Engine {
  mockStep(workflow: string, step: string, fn: (input: any, ctx: TaskContext) => unknown): void;
  advance(span: number | string): Promise<void>;
}

/**
 * Drives a started-to-be workflow along one path of {@link workflowPaths}: every step of the
 * workflow is mocked and held (its task type paused), and each move is made in turn: a step
 * released to return its output or fail, an event sent, the clock advanced to a timer, a
 * cancel. After each move the workflow must be in the state the path says, or this throws
 * `PATH_DIVERGED` naming the move. Resolves the workflow as `getWorkflow` shows it at the end.
 */
export async function followPath(engine: PathDriver, workflow: string, path: WorkflowPath, input: unknown): Promise<WorkflowRecord> {
  const machine = engine.workflowMachine(workflow);
  if (!machine) throw new PromisedError('UNKNOWN_WORKFLOW', `unknown workflow "${workflow}"; register it in createTestEngine({ register })`);
  const outcomes = new Map<string, WorkflowPathMove[]>();
  const steps = [...new Set(actorSources(machine).map((actor) => actor.src!))];
  for (const step of steps) {
    // Held until the path says it finishes: a step the path leaves running must not run at all.
    await engine.pause(stepType(workflow, step));
    engine.mockStep(workflow, step, async () => {
      const move = outcomes.get(step)?.shift();
      if (move?.kind === 'done') return move.output;
      if (move?.kind === 'error') throw new NonRetryableError(move.error.code, move.error.message);
      throw new NonRetryableError('PATH_STEP_UNEXPECTED', `step ${step} of workflow "${workflow}" ran, but the path does not finish it here`);
    });
  }
  const id = await engine.startWorkflow(workflow, input);
  await engine.idle();
  for (const [index, move] of path.moves.entries()) {
    await makeMove(engine, workflow, id, move, outcomes);
    const record = (await engine.getWorkflow(id))!;
    if (!isDeepStrictEqual(record.value, move.to)) {
      throw new PromisedError(
        'PATH_DIVERGED',
        `workflow ${id} left the path at move ${index + 1} (${JSON.stringify(move)}): it is in ${JSON.stringify(record.value)}, ${record.status}${record.error ? ` (${record.error.code}: ${record.error.message})` : ''}; path: ${path.description}`,
      );
    }
  }
  return (await engine.getWorkflow(id))!;
}

async function makeMove(engine: PathDriver, workflow: string, id: string, move: WorkflowPathMove, outcomes: Map<string, WorkflowPathMove[]>): Promise<void> {
  if (move.kind === 'done' || move.kind === 'error') {
    outcomes.set(move.step, [...(outcomes.get(move.step) ?? []), move]);
    const type = stepType(workflow, move.step);
    await engine.resume(type);
    await engine.idle();
    await engine.pause(type);
  } else if (move.kind === 'event') {
    await engine.send(id, move.event as WorkflowEvent);
    await engine.idle();
  } else if (move.kind === 'after') {
    await engine.advance(move.delay);
  } else {
    await engine.cancelWorkflow(id);
    await engine.idle();
  }
}
