import type { Engine } from '../engine/engine.js';
import type { PageFilter } from '../engine/public-types.js';
import type { PromiseRecord } from '../kernel/records.js';
import { SEARCH_WINDOW } from '../engine/promise-pages.js';

const GRAPH_LIMIT = 200;
const FOLLOW_UPS_SHOWN = 20;

/** The page filter a list request's query asks for (empty values are no filter). */
export function pageFilterOf(query: URLSearchParams): PageFilter {
  const given = (name: string) => query.get(name) || undefined;
  const limit = given('limit');
  return {
    status: given('status') as PageFilter['status'],
    type: given('type'),
    errorCode: given('error'),
    search: given('q'),
    before: given('before'),
    // Left to the engine to refuse: "abc" is not a limit, and says so.
    limit: limit === undefined ? undefined : /^\d+$/.test(limit) ? Number(limit) : (limit as unknown as number),
  };
}

/**
 * What a promise is linked to, both ways: the promises it depends on and those depending on it
 * (fan-out), the promise it follows up (its payload names it, as `onComplete`/`onFail` write it)
 * and its own follow-ups (found by that payload among the next SEARCH_WINDOW ids: a follow-up is
 * inserted with the settling of the promise it follows, so soon after it).
 */
export async function relationsOf(engine: Engine, record: PromiseRecord) {
  const follows = followedId(record.payload);
  const followUps = await engine.listPage({ search: `{"promise":{"id":"${record.id}"`, limit: FOLLOW_UPS_SHOWN, before: String(Number(record.id) + SEARCH_WINDOW) });
  return {
    dependsOn: record.dependsOn,
    dependents: await engine.dependentsOf(record.id),
    follows: follows && (await engine.get(follows)) ? follows : null,
    followUps: followUps.promises.filter((other) => followedId(other.payload) === record.id).map((other) => ({ id: other.id, type: other.type, status: other.status })),
  };
}

/** The id a follow-up's payload (`{ promise: { id, type, status } }`) names, if it is one. */
function followedId(payload: unknown): string | undefined {
  const promise = (payload as { promise?: { id?: unknown; type?: unknown; status?: unknown } } | null)?.promise;
  return promise && typeof promise.id === 'string' && typeof promise.type === 'string' && typeof promise.status === 'string' ? promise.id : undefined;
}

/** The promise, its ancestors (through `dependsOn`) and its descendants (through {@link Engine.dependentsOf}). */
export async function dependencyGraph(engine: Engine, id: string) {
  const root = await engine.get(id);
  if (!root) return { nodes: [], edges: [] };
  const nodes = new Map([[root.id, root]]);
  const edges: Array<[string, string]> = [];
  const queue = [root];
  while (queue.length > 0 && nodes.size < GRAPH_LIMIT) {
    const record = queue.shift()!;
    for (const parent of record.dependsOn) {
      edges.push([parent, record.id]);
      if (nodes.has(parent)) continue;
      const found = await engine.get(parent);
      if (found) {
        nodes.set(found.id, found);
        queue.push(found);
      }
    }
  }
  // Descendants through the edge table, which is indexed both ways.
  const descendants = [root.id];
  const seen = new Set(descendants);
  while (descendants.length > 0 && nodes.size < GRAPH_LIMIT) {
    const parent = descendants.shift()!;
    for (const child of await engine.dependentsOf(parent)) {
      edges.push([parent, child]);
      if (seen.has(child)) continue;
      seen.add(child);
      const found = nodes.get(child) ?? (await engine.get(child));
      if (!found) continue;
      nodes.set(found.id, found);
      descendants.push(found.id);
    }
  }
  const unique = [...new Map(edges.map((edge) => [edge.join('>'), edge])).values()].filter(([from, to]) => nodes.has(from) && nodes.has(to));
  return { nodes: [...nodes.values()].map(({ id: nodeId, type, status }) => ({ id: nodeId, type, status })), edges: unique };
}
