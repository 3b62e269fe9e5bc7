import type { Engine } from '../engine/engine.js';
import { PromisedError } from '../errors.js';
import type { InspectionFeed } from '../inspect/inspection-feed.js';
import { dependencyGraph, pageFilterOf, relationsOf } from './promise-reads.js';

/** A JSON answer: status and body. */
export interface ApiAnswer {
  status: number;
  body: unknown;
}


/**
 * The dashboard's JSON API: reads and actions, each one call of the engine's public API.
 * `path` is relative to the dashboard's base path, starting with `/api/`.
 */
export async function answerApi(engine: Engine, feed: InspectionFeed, method: string, path: string, query: URLSearchParams): Promise<ApiAnswer> {
  const parts = decodedSegments(path);
  if (!parts) return { status: 400, body: { error: { code: 'INVALID_URL', message: `the path ${path} holds a malformed percent-encoding: each % must start two hex digits, together UTF-8` } } };
  try {
    if (method === 'GET') return await read(engine, feed, parts, query);
    if (method === 'POST') return await act(engine, parts);
    return { status: 405, body: { error: { code: 'METHOD_NOT_ALLOWED', message: `${method} is not allowed here` } } };
  } catch (error) {
    if (error instanceof PromisedError) return { status: statusOf(error.code), body: { error: { code: error.code, message: error.message } } };
    throw error;
  }
}

async function read(engine: Engine, feed: InspectionFeed, parts: string[], query: URLSearchParams): Promise<ApiAnswer> {
  const [resource, id, detail] = parts;
  if (resource === 'stats' && !id) return ok({ ...(await engine.stats()), at: Date.now() });
  if (resource === 'promises' && !id) return ok(await engine.listPage(pageFilterOf(query)));
  if (resource === 'promises' && id && !detail) {
    const record = await engine.get(id);
    if (!record) return notFound(`promise ${id}`);
    return ok({ record, history: await engine.history(id), relations: await relationsOf(engine, record), sessionId: feed.sessionIdOf('promise', id) });
  }
  if (resource === 'promises' && id && detail === 'graph') return ok(await dependencyGraph(engine, id));
  if (resource === 'workflows' && !id) {
    const status = query.get('status');
    const filter = status === 'running' || status === 'completed' || status === 'failed' ? { status, limit: 50 } : { limit: 50 };
    const workflows = await engine.listWorkflows(filter as Parameters<Engine['listWorkflows']>[0]);
    return ok(workflows.map((workflow) => ({ ...workflow, sessionId: feed.sessionIdOf('workflow', workflow.id) })));
  }
  if (resource === 'workflows' && id) {
    const workflow = await engine.getWorkflow(id);
    if (!workflow) return notFound(`workflow ${id}`);
    return ok({ ...workflow, sessionId: feed.sessionIdOf('workflow', id), definition: feed.definitionOf(workflow.name) ?? null });
  }
  if (resource === 'dead-letters' && !id) return ok(await engine.deadLetters.list({ limit: 200 }));
  return notFound(`/api/${parts.join('/')}`);
}

async function act(engine: Engine, parts: string[]): Promise<ApiAnswer> {
  const [resource, id, action] = parts;
  if (resource === 'promises' && id && action === 'cancel') {
    await engine.cancel(id);
    return ok({ cancelled: id });
  }
  if (resource === 'promises' && id && action === 'retry') {
    await engine.retry(id);
    return ok({ retried: id });
  }
  if (resource === 'dead-letters' && id === 'retry-all') {
    const retried: string[] = [];
    const skipped: Array<{ id: string; code: string }> = [];
    for (const letter of await engine.deadLetters.list({ limit: 10_000 })) {
      try {
        await engine.retry(letter.promiseId);
        retried.push(letter.promiseId);
      } catch (error) {
        // Already retried, or its parent is still failed: reported, not fatal.
        skipped.push({ id: letter.promiseId, code: error instanceof PromisedError ? error.code : 'ERROR' });
      }
    }
    return ok({ retried, skipped });
  }
  return notFound(`POST /api/${parts.join('/')}`);
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
