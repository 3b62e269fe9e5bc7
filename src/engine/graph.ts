import { DependencyCycleError, InvalidOptionError } from '../errors.js';

/** One node of {@link Engine.enqueueGraph}: `dependsOn` names other nodes (or existing promise ids). */
export interface GraphNode<P = unknown> {
  type: string;
  payload?: P;
  dependsOn?: string[];
  priority?: number;
  delay?: number;
  key?: string;
}

/**
 * Orders a named graph so that every node comes after the nodes it depends on, or throws
 * {@link DependencyCycleError} naming one cycle (a self-dependency is a cycle of one).
 * Names not in the graph are left for the caller to resolve as existing promise ids.
 */
export function orderGraph(graph: Record<string, Pick<GraphNode, 'dependsOn'>>): string[] {
  if (graph === null || typeof graph !== 'object' || Array.isArray(graph)) {
    throw new InvalidOptionError('graph', graph, 'an object of named nodes');
  }
  const order: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const path: string[] = [];
  const visit = (name: string): void => {
    const seen = state.get(name);
    if (seen === 'done') return;
    if (seen === 'visiting') throw new DependencyCycleError([...path.slice(path.indexOf(name)), name]);
    state.set(name, 'visiting');
    path.push(name);
    for (const parent of graph[name]!.dependsOn ?? []) if (Object.hasOwn(graph, parent)) visit(parent);
    path.pop();
    state.set(name, 'done');
    order.push(name);
  };
  for (const name of Object.keys(graph)) {
    const node = graph[name];
    if (node === null || typeof node !== 'object') throw new InvalidOptionError(`graph.${name}`, node, 'an object { type, payload, dependsOn }');
    if (node.dependsOn !== undefined && !Array.isArray(node.dependsOn)) throw new InvalidOptionError(`graph.${name}.dependsOn`, node.dependsOn, 'an array of names or ids');
  }
  for (const name of Object.keys(graph)) visit(name);
  return order;
}
