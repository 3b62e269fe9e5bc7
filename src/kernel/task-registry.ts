import { EngineStateError, InvalidOptionError, UnknownDependencyError, UnknownTaskTypeError } from '../errors.js';
import { toJsonText } from '../json.js';
import { integerIn, MAX_DELAY_MS, PRIORITY_RANGE, resolveTaskOptions, type Clock, type TaskOptions } from './options.js';
import type { PromiseItem } from './port.js';
import { parseId } from './records.js';
import { flowKeysOf } from './flow-options.js';
import { groupKeyOf } from './grouping-options.js';
import { assertStorableName } from './storable-text.js';
import type { TaskDefinition, TaskHandler } from './task-context.js';
import type { NewPromiseSpec, TypePolicy } from './transition-types.js';

/**
 * The registered promise types: their handlers and resolved options, and the one validation of
 * a promise to create (every enqueue, follow-up, step and message goes through `specOf`).
 */
export class TaskRegistry {
  readonly #tasks = new Map<string, TaskDefinition>();
  readonly #clock: Clock;
  readonly #defaultResultTtl: number;

  constructor(clock: Clock, defaultResultTtl: number) {
    this.#clock = clock;
    this.#defaultResultTtl = defaultResultTtl;
  }

  register(type: string, handler: TaskHandler, options?: TaskOptions): void {
    if (typeof type !== 'string' || type.length === 0 || type.length > 200) throw new InvalidOptionError('type', type, 'a non-empty string of at most 200 characters');
    assertStorableName('type', type);
    if (typeof handler !== 'function') throw new InvalidOptionError('handler', handler, 'a function (payload, ctx) => result');
    if (this.#tasks.has(type)) throw new EngineStateError('DUPLICATE_TASK', `task type "${type}" is already registered`);
    const resolved = resolveTaskOptions(options);
    const rowLife = resolved.resultTtl ?? this.#defaultResultTtl;
    // The row that holds a key is what remembers it: cleanup removing it earlier would forget the key early.
    if (resolved.keyTtl !== null && resolved.keyTtl > rowLife) throw new InvalidOptionError('keyTtl', resolved.keyTtl, `at most the type's resultTtl (${rowLife} ms), which keeps the row that holds the key`);
    this.#tasks.set(type, { type, handler, options: resolved });
  }

  /** Replaces the handler of a registered type, its options kept (a test's mock). */
  replaceHandler(type: string, handler: TaskHandler): void {
    const task = this.#tasks.get(type);
    if (!task) throw new UnknownTaskTypeError(type, this.types);
    if (typeof handler !== 'function') throw new InvalidOptionError('handler', handler, 'a function (payload, ctx) => result');
    this.#tasks.set(type, { ...task, handler });
  }

  get(type: string): TaskDefinition | undefined {
    return this.#tasks.get(type);
  }

  get types(): string[] {
    return [...this.#tasks.keys()];
  }

  policyOf(type: string): TypePolicy {
    const options = this.#tasks.get(type)?.options;
    return { resultTtl: options?.resultTtl ?? this.#defaultResultTtl, onComplete: options?.onComplete ?? null, onFail: options?.onFail ?? null };
  }

  /** A completion or failure follow-up must name a registered type before anything is written. */
  assertFollowUpsKnown(task: TaskDefinition): void {
    for (const followUp of [task.options.onComplete, task.options.onFail]) {
      if (followUp !== null && !this.#tasks.has(followUp)) throw new UnknownTaskTypeError(followUp, this.types);
    }
  }

  /** Every registered type's follow-ups are known (checked again at start: types may be registered in any order). */
  assertAllFollowUpsKnown(): void {
    for (const task of this.#tasks.values()) this.assertFollowUpsKnown(task);
  }

  /** Validates an item as `enqueue` takes it and returns what to insert; throws a typed error before anything is written. */
  specOf(item: PromiseItem, payloadPath: string): NewPromiseSpec {
    if (item === null || typeof item !== 'object') throw new InvalidOptionError('item', item, 'an object { type, payload }');
    const task = this.#tasks.get(item.type);
    if (!task) throw new UnknownTaskTypeError(String(item.type), this.types);
    this.assertFollowUpsKnown(task);
    const priority = item.priority === undefined ? task.options.priority : integerIn('priority', item.priority, ...PRIORITY_RANGE);
    const delay = integerIn('delay', item.delay ?? 0, 0, MAX_DELAY_MS);
    if (item.key !== undefined && (typeof item.key !== 'string' || item.key.length === 0 || item.key.length > 512)) {
      throw new InvalidOptionError('key', item.key, 'a non-empty string of at most 512 characters');
    }
    if (item.key !== undefined) assertStorableName('key', item.key);
    if (item.dependsOn !== undefined && !Array.isArray(item.dependsOn)) throw new InvalidOptionError('dependsOn', item.dependsOn, 'an array of promise ids');
    const parents = (item.dependsOn ?? []).map((parent) => {
      const id = parseId(parent);
      if (id === undefined) throw new UnknownDependencyError(String(parent));
      return id;
    });
    const { debounce, batch } = task.options;
    if (debounce !== null) refuseBesideDebounce(item);
    const { flowKey, rateKey } = flowKeysOf(task.options.flow, item.payload, item.concurrencyKey);
    return {
      type: item.type,
      // A batch is formed of the runnable promises of one key: its key is the row's flow key.
      flowKey: batch === null ? flowKey : groupKeyOf('batch.key', batch.keyOf, item.payload),
      rateKey,
      debounce: debounce === null ? null : { key: groupKeyOf('debounce.key', debounce.keyOf, item.payload), periodMs: debounce.periodMs, maxDelayMs: debounce.maxDelayMs },
      expireIn: task.options.expireIn,
      keyTtl: task.options.keyTtl,
      payload: toJsonText(item.payload, payloadPath),
      priority,
      maxAttempts: task.options.maxAttempts,
      runAt: this.#clock.now() + delay,
      key: item.key ?? null,
      parents: [...new Set(parents)],
    };
  }
}

/**
 * A debounced promise runs `periodMs` after the last enqueue of its key, with the last payload:
 * a delay, dependencies or an idempotency key of one enqueue would be silently lost when a later
 * one replaces it, so they are refused.
 */
function refuseBesideDebounce(item: PromiseItem): void {
  for (const option of ['delay', 'dependsOn', 'key'] as const) {
    if (item[option] !== undefined) throw new InvalidOptionError(option, item[option], `nothing: task "${item.type}" is debounced (it runs debounce.periodMs after the last enqueue of its key)`);
  }
}
