import { InvalidOptionError, PromisedError } from '../errors.js';
import type { ApiContext } from './api-context.js';
import { dependencyGraph, pageFilterOf, relationsOf } from './promise-reads.js';
import { actOnWorkflow, readWorkflows } from './workflow-api.js';
import { actOnSchedule, actOnType, readSchedulesView } from './schedule-api.js';

/** A JSON answer: status and body. */
export interface ApiAnswer {
  status: number;
  body: unknown;
}


/**
 * The dashboard's JSON API: reads and actions, each one call of the engine's public API.
 * `path` is relative to the dashboard's base path, starting with `/api/`; `body` is an action's
 * parsed JSON body (`{}` when empty).
 */
export async function answerApi(context: ApiContext, method: string, path: string, query: URLSearchParams, body: unknown = {}): Promise<ApiAnswer> {
  const parts = decodedSegments(path);
  if (!parts) return { status: 400, body: { error: { code: 'INVALID_URL', message: `the path ${path} holds a malformed percent-encoding: each % must start two hex digits, together UTF-8` } } };
  try {
    if (method === 'GET') return (await read(context, parts, query)) ?? notFound(`/api/${parts.join('/')}`);
    if (method === 'POST') {
      if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new InvalidOptionError('body', body, 'a JSON object');
      return (await act(context, parts, body as Record<string, unknown>)) ?? notFound(`POST /api/${parts.join('/')}`);
    }
    return { status: 405, body: { error: { code: 'METHOD_NOT_ALLOWED', message: `${method} is not allowed here` } } };
  } catch (error) {
    if (error instanceof PromisedError) return { status: statusOf(error.code), body: { error: { code: error.code, message: error.message } } };
    throw error;
  }
}

async function read(context: ApiContext, parts: string[], query: URLSearchParams): Promise<ApiAnswer | undefined> {
  const { engine, feed } = context;
  const [resource, id, detail] = parts;
  if (resource === 'stats' && !id) return ok({ ...(await engine.stats()), at: Date.now() });
  if (resource === 'promises' && !id) return ok(await engine.listPage(pageFilterOf(query)));
  if (resource === 'promises' && id && !detail) {
    const record = await engine.get(id);
    if (!record) return notFound(`promise ${id}`);
    return ok({ record, history: await engine.history(id), relations: await relationsOf(engine, record), sessionId: feed.sessionIdOf('promise', id) });
  }
  if (resource === 'promises' && id && detail === 'graph' && parts.length === 3) return ok(await dependencyGraph(engine, id));
  if (resource === 'workflows') return ok(await readWorkflows(context, parts.slice(1), query));
  if (resource === 'dead-letters' && !id) return ok(await engine.deadLetters.list({ limit: 200 }));
  if (resource === 'schedules' && !id) return ok(await readSchedulesView(engine));
  return undefined;
}

async function act(context: ApiContext, parts: string[], body: Record<string, unknown>): Promise<ApiAnswer | undefined> {
  const { engine } = context;
  const [resource, id, action, ...rest] = parts;
  // A kept event is discarded at workflows/ID/events/EVENT/discard; every other action is three deep.
  if (resource === 'workflows' && id && action) return ok(await actOnWorkflow(engine, id, action, body, rest));
  if (rest.length > 0) return undefined;
  if (resource === 'promises' && id && action === 'cancel') {
    await engine.cancel(id);
    return ok({ cancelled: id });
  }
  if (resource === 'promises' && id && action === 'retry') {
    // `{ payload }` retries with that payload instead of the stored one.
    await engine.retry(id, 'payload' in body ? { payload: body.payload } : {});
    return ok({ retried: id });
  }
  if (resource === 'dead-letters' && id === 'retry-all' && !action) return ok(await engine.deadLetters.retryAll());
  if (resource === 'schedules' && id && action) return ok(await actOnSchedule(engine, id, action));
  if (resource === 'types' && id && action) return ok(await actOnType(engine, id, action));
  return undefined;
}

/** The path's segments after `/api/`, percent-decoded, or undefined when a `%` escape is malformed. */
function decodedSegments(path: string): string[] | undefined {
  try {
    return path.split('/').filter(Boolean).slice(1).map(decodeURIComponent);
  } catch {
    return undefined;
  }
}

/** Bad input is the caller's to fix (400); a missing row 404; the engine refusing a state change 409. */
function statusOf(code: string): number {
  if (code === 'NOT_FOUND') return 404;
  return code.startsWith('INVALID_') && code !== 'INVALID_TRANSITION' ? 400 : 409;
}

const ok = (body: unknown): ApiAnswer => ({ status: 200, body });
const notFound = (what: string): ApiAnswer => ({ status: 404, body: { error: { code: 'NOT_FOUND', message: `${what} not found` } } });
