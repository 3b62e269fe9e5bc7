import type { AnyStateMachine } from 'xstate';
import type { Engine } from '../engine/engine.js';
import { InvalidOptionError, NotFoundError } from '../errors.js';
import type { WorkflowFilter } from '../workflows/workflow-reads.js';
import type { WorkflowEvent } from '../workflows/workflow-types.js';
import { awaitedEventTypes } from '../workflows/event-reachability.js';
import type { ApiContext } from './api-context.js';

const LIST_LIMIT = 50;

/** GET `workflows[/ID[/history[/SEQ]]]`: a list (status, name, awaiting), one workflow, its history, its state at a step. */
export async function readWorkflows(context: ApiContext, parts: string[], query: URLSearchParams): Promise<unknown> {
  const { engine, feed } = context;
  const [id, detail, seq, ...rest] = parts;
  if (rest.length > 0) throw new NotFoundError(parts.join('/'), 'route');
  if (!id) {
    const given = (name: string) => query.get(name) || undefined;
    const filter: WorkflowFilter = { status: given('status') as WorkflowFilter['status'], name: given('name'), awaiting: given('awaiting'), limit: LIST_LIMIT };
    const workflows = await engine.listWorkflows(filter);
    return workflows.map((workflow) => ({ ...workflow, sessionId: feed.sessionIdOf('workflow', workflow.id) }));
  }
  if (detail === 'history' && seq === undefined) return engine.workflowHistory(id);
  if (detail === 'history') return engine.workflowStateAt(id, /^\d{1,9}$/.test(seq!) ? Number(seq) : (seq as unknown as number));
  if (detail !== undefined) throw new NotFoundError(parts.join('/'), 'route');
  const workflow = await engine.getWorkflow(id);
  if (!workflow) throw new NotFoundError(id, 'workflow');
  const machine = machineOf(context, workflow.name);
  return {
    ...workflow,
    sessionId: feed.sessionIdOf('workflow', id),
    definition: feed.definitionOf(workflow.name) ?? null,
    // What a Send offers: the event types the current state has a transition for (guards not
    // evaluated; `*` and `prefix.*` as written), none once it has finished.
    accepts: machine && workflow.status === 'running' ? awaitedEventTypes(machine, workflow.value) : [],
  };
}

/** POST `workflows/ID/(send|cancel|pause|resume)`, and `workflows/ID/events/EVENT/discard` (a kept event). */
export async function actOnWorkflow(engine: Engine, id: string, action: string, body: Record<string, unknown>, rest: string[] = []): Promise<unknown> {
  if (action === 'events' && rest.length === 2 && rest[1] === 'discard') return { discarded: await engine.discardEvent(id, rest[0]!) };
  if (rest.length > 0) throw new NotFoundError(`${id}/${[action, ...rest].join('/')}`, 'workflow action');
  if (action === 'send') {
    const event = body.event as WorkflowEvent | undefined;
    if (typeof event !== 'object' || event === null || Array.isArray(event) || typeof event.type !== 'string' || event.type.length === 0) {
      throw new InvalidOptionError('event', event, 'an object with a non-empty string `type`, e.g. { "type": "APPROVE" }');
    }
    if (body.key !== undefined && typeof body.key !== 'string') throw new InvalidOptionError('key', body.key, 'a string');
    return engine.send(id, event, body.key === undefined ? {} : { key: body.key });
  }
  if (action === 'cancel') return engine.cancelWorkflow(id);
  if (action === 'pause') return { paused: await engine.pauseWorkflow(id) };
  if (action === 'resume') return { resumed: await engine.resumeWorkflow(id) };
  throw new NotFoundError(`${id}/${action}`, 'workflow action');
}

function machineOf(context: ApiContext, name: string): AnyStateMachine | undefined {
  return Object.hasOwn(context.machines, name) ? context.machines[name] : context.engine.workflowMachine(name);
}
