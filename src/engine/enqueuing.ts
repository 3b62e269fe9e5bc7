import { EngineStateError, InvalidOptionError } from '../errors.js';
import { toJsonText } from '../json.js';
import type { Kernel } from '../kernel/kernel.js';
import type { TaskOptions } from '../kernel/options.js';
import type { PromiseItem } from '../kernel/port.js';
import type { TaskHandler } from '../kernel/task-context.js';
import { TaskRegistry } from '../kernel/task-registry.js';
import type { NewPromiseSpec } from '../kernel/transition-types.js';
import { orderGraph, type GraphNode } from './graph.js';
import { checkPayload, handlerOf, isTypedTask, type AnyTypedTask } from './typed-tasks.js';

/** A promise to enqueue: named by its type (the string API) or given by its definition. */
export type AnyItem = PromiseItem | (Omit<PromiseItem, 'type'> & { task: AnyTypedTask });

/** A node of a graph to enqueue, by type or by definition. */
export type AnyNode = GraphNode | (Omit<GraphNode, 'type'> & { task: AnyTypedTask });

/** Never called: the producer registry only computes what to store, it runs nothing. */
const producerOnly: TaskHandler = () => {
  throw new Error('a producer-only definition has no handler in this process');
};

/**
 * The engine's enqueue path: registration of definitions, validation (the kernel's, then the
 * definition's schema) and the inserts, one transaction per call.
 *
 * A definition enqueued in a process where no handler of its type is registered (a producer)
 * is validated by a registry of its own: it computes what the row stores at enqueue (priority,
 * `maxAttempts` and flow keys) from the definition's options, exactly as the worker's registry
 * computes them from the same definition. Retry delays, timeouts, follow-ups and the rest are
 * read by the worker when it runs the promise.
 */
export class Enqueuing {
  readonly #kernel: Kernel;
  /** Registered with `engine.task(definition)`: their schema also checks enqueues of their type by name. */
  readonly #registered = new Map<string, AnyTypedTask>();
  /** Enqueued here without a registered handler, each in {@link Enqueuing.#producerRegistry}. */
  readonly #producerOnly = new Map<string, AnyTypedTask>();
  readonly #producerRegistry: TaskRegistry;

  constructor(kernel: Kernel) {
    this.#kernel = kernel;
    // Its result TTL is never read: nothing settles a promise through this registry.
    this.#producerRegistry = new TaskRegistry(kernel.clock, 0);
  }

  /** `engine.task(type, handler, options)` or `engine.task(definition)`. */
  register(task: unknown, handler?: TaskHandler, options?: TaskOptions): void {
    if (!isTypedTask(task)) return this.#kernel.registerTask(task as string, handler as TaskHandler, options);
    if (typeof task.handler !== 'function') {
      throw new InvalidOptionError('handler', task.handler, `a handler in the definition of "${task.type}" (a producer may enqueue a definition without one; a worker registers it with one)`);
    }
    this.#kernel.registerTask(task.type, handlerOf(task, task.handler), task.options);
    this.#registered.set(task.type, task);
  }

  /**
   * Validates an item and returns what to insert; throws a typed error before anything is
   * written. The schema sees the payload as the worker will: as stored, after JSON (a `Date`
   * arrives as its ISO string).
   */
  async specOf(item: AnyItem, payloadPath: string): Promise<NewPromiseSpec> {
    if (item === null || typeof item !== 'object' || !('task' in item)) {
      const spec = this.#kernel.specOf(item, payloadPath);
      const definition = this.#registered.get(spec.type);
      if (definition) await checkPayload(definition, JSON.parse(spec.payload), payloadPath);
      return spec;
    }
    const { task, ...rest } = item;
    if (!isTypedTask(task)) throw new InvalidOptionError('task', task, 'a task definition made by defineTask()');
    const named: PromiseItem = { ...rest, type: task.type };
    const spec = this.#kernel.tasks.get(task.type) ? this.#kernel.specOf(named, payloadPath) : this.#producerSpec(task, named, payloadPath);
    await checkPayload(task, JSON.parse(spec.payload), payloadPath);
    return spec;
  }

  /**
   * The payload a retry writes instead of the stored one, as text: checked as an enqueue of
   * `type` would be (JSON limits, and the definition's schema when one is registered). A type
   * this process does not register (a dashboard) is checked as JSON only.
   */
  async retryPayload(type: string, payload: unknown): Promise<string> {
    const text = this.#kernel.tasks.get(type) ? this.#kernel.specOf({ type, payload }, 'payload').payload : toJsonText(payload, 'payload');
    const definition = this.#registered.get(type);
    if (definition) await checkPayload(definition, JSON.parse(text), 'payload');
    return text;
  }

  #producerSpec(task: AnyTypedTask, item: PromiseItem, payloadPath: string): NewPromiseSpec {
    const known = this.#producerOnly.get(task.type);
    if (known === undefined) {
      // Follow-ups are enqueued by the worker that settles the promise: their types need not be known here.
      const { onComplete: _onComplete, onFail: _onFail, ...options } = task.options ?? {};
      this.#producerRegistry.register(task.type, producerOnly, options);
      this.#producerOnly.set(task.type, task);
    } else if (known !== task) {
      throw new EngineStateError('DUPLICATE_TASK', `two different definitions of task type "${task.type}" were enqueued here; import one shared definition`);
    }
    return this.#producerRegistry.specOf(item, payloadPath);
  }

  /** Validates every item, then stores them in one transaction; all or none. */
  async enqueue(items: Array<{ item: AnyItem; payloadPath: string }>): Promise<string[]> {
    const specs: NewPromiseSpec[] = [];
    for (const { item, payloadPath } of items) specs.push(await this.specOf(item, payloadPath));
    const ids = await this.#kernel.write(async (uow) => {
      const created: number[] = [];
      for (const spec of specs) created.push((await this.#kernel.promises.create(uow, spec)).id);
      return created;
    });
    await this.#kernel.enqueued();
    return ids.map(String);
  }

  /** Validates a named graph (a cycle is refused), then stores it in one transaction; the id of each node. */
  async enqueueGraph(graph: Record<string, AnyNode>): Promise<Record<string, string>> {
    const nodes: Array<{ name: string; internal: string[]; spec: NewPromiseSpec }> = [];
    for (const name of orderGraph(graph)) {
      const node = graph[name]!;
      const external = (node.dependsOn ?? []).filter((parent) => !Object.hasOwn(graph, parent));
      const internal = (node.dependsOn ?? []).filter((parent) => Object.hasOwn(graph, parent));
      nodes.push({ name, internal, spec: await this.specOf({ ...node, dependsOn: external }, `graph.${name}.payload`) });
    }
    const ids = await this.#kernel.write(async (uow) => {
      const byName: Record<string, number> = {};
      for (const { name, internal, spec } of nodes) {
        const parents = [...spec.parents, ...internal.map((parent) => byName[parent]!)];
        byName[name] = (await this.#kernel.promises.create(uow, { ...spec, parents })).id;
      }
      return byName;
    });
    await this.#kernel.enqueued();
    return Object.fromEntries(Object.entries(ids).map(([name, id]) => [name, String(id)]));
  }
}
