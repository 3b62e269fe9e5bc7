import type { StandardSchemaV1 } from '@standard-schema/spec';
import { InvalidOptionError, InvalidPayloadError, NonRetryableError } from '../errors.js';
import { resolveTaskOptions, type TaskOptions } from '../kernel/options.js';
import type { TaskContext, TaskHandler } from '../kernel/task-context.js';
import type { EnqueueItem, EnqueueOptions } from './public-types.js';
import type { GraphNode } from './graph.js';

/**
 * A task type, its payload schema, handler and options in one value, made by {@link defineTask}.
 * A worker registers it (`engine.task(definition)`); a producer only imports it to enqueue
 * (`engine.enqueue(definition, payload)`), typed by `Input` and checked by the schema.
 */
export interface TypedTask<Input = unknown, Payload = Input, Result = unknown> {
  readonly type: string;
  /** Any Standard Schema (zod, valibot, arktype…): checks what `enqueue` is given, and parses it again before the handler runs. */
  readonly schema: StandardSchemaV1<Input, Payload> | undefined;
  /** Needed to register the task; a producer's definition may leave it out. */
  readonly handler: TaskHandler<Payload, Result> | undefined;
  readonly options: TaskOptions | undefined;
  /** Types only, never set: what `enqueue` takes, what the handler gets, what `result` resolves. */
  readonly '~types'?: { readonly input: Input; readonly payload: Payload; readonly result: Result };
}

/** Any {@link TypedTask}, whatever its types. */
export type AnyTypedTask = TypedTask<any, any, any>;

/** What `engine.enqueue(definition, payload)` takes: the schema's input type. */
export type InputOf<T extends AnyTypedTask> = NonNullable<T['~types']>['input'];
/** What the handler receives: the schema's output type. */
export type PayloadOf<T extends AnyTypedTask> = NonNullable<T['~types']>['payload'];
/** What `engine.result(id)` resolves for a promise of this task: the handler's result (`null` when it returns nothing). */
export type ResultOf<T extends AnyTypedTask> = NonNullable<T['~types']>['result'];

declare const resultType: unique symbol;

/**
 * A promise id that remembers its task's result type, as `engine.enqueue(definition, …)`
 * returns it, so that `engine.result(id)` is typed. At run time it is a plain string, usable
 * wherever an id is (`dependsOn`, `get`, `cancel`, the CLI).
 */
export type PromiseId<R = unknown> = string & { readonly [resultType]?: R };

/** One item of `engine.enqueueMany` given by its definition; `payload` is typed by its schema. */
export type TaskItem<T extends AnyTypedTask> = T extends AnyTypedTask ? EnqueueOptions & { task: T; payload: InputOf<T> } : never;

/** One node of `engine.enqueueGraph` given by its definition; `payload` is typed by its schema. */
export type TaskNode<T extends AnyTypedTask> = T extends AnyTypedTask ? Omit<GraphNode, 'type' | 'payload'> & { task: T; payload: InputOf<T> } : never;

/** Items whose entries given by definition have payloads of their schema's input type. */
export type CheckedItems<I> = { [K in keyof I]: CheckedItem<I[K]> };

type CheckedItem<Item> = Item extends { task: infer T extends AnyTypedTask } ? TaskItem<T> : EnqueueItem;

/** The ids `enqueueMany` returns, in order: typed by each item's definition. */
export type ItemIds<I> = { -readonly [K in keyof I]: IdOf<I[K]> };

type IdOf<Item> = Item extends { task: infer T extends AnyTypedTask } ? PromiseId<ResultOf<T>> : string;

/** A graph whose nodes given by definition have payloads of their schema's input type. */
export type CheckedGraph<G> = { [K in keyof G]: CheckedNode<G[K]> };

type CheckedNode<Node> = Node extends { task: infer T extends AnyTypedTask } ? TaskNode<T> : GraphNode;

/** The ids `enqueueGraph` returns: typed by each node's definition (a node given by `type` has a plain string id). */
export type GraphIds<G> = { [K in keyof G]: IdOf<G[K]> };

/** What a stored result reads back as: a handler that returns nothing stores `null`. */
type Stored<R> = Exclude<Awaited<R>, undefined | void> | (undefined extends Awaited<R> ? null : never);

interface Definition<P, R> {
  type: string;
  handler?: TaskHandler<P, R>;
  options?: TaskOptions;
}

/**
 * Defines a task: its type, the Standard Schema of its payload (zod, valibot, arktype…), its
 * handler and options. `engine.enqueue(definition, payload)` is typed from the schema's input
 * and refuses what the schema refuses (`INVALID_PAYLOAD`, naming the issue's path) before
 * anything is written; the handler gets the schema's output.
 *
 * @example
 * ```ts
 * import { z } from 'zod';
 * import { defineTask } from 'promised';
 *
 * export const review = defineTask({
 *   type: 'review',
 *   schema: z.object({ file: z.string() }),
 *   handler: async ({ file }) => ({ file, ok: true }),
 *   options: { retries: 3 },
 * });
 * ```
 */
export function defineTask<S extends StandardSchemaV1, R = unknown>(
  definition: Definition<StandardSchemaV1.InferOutput<S>, R> & { schema: S },
): TypedTask<StandardSchemaV1.InferInput<S>, StandardSchemaV1.InferOutput<S>, Stored<R>>;
/** Defines a task without a schema: the payload's type is the handler's parameter (or `P`), and nothing checks it at run time. */
export function defineTask<P = unknown, R = unknown>(definition: Definition<P, R> & { schema?: undefined }): TypedTask<P, P, Stored<R>>;
export function defineTask(definition: Definition<unknown, unknown> & { schema?: StandardSchemaV1 }): AnyTypedTask {
  if (definition === null || typeof definition !== 'object') throw new InvalidOptionError('definition', definition, 'an object { type, schema?, handler?, options? }');
  const { type, schema, handler, options } = definition;
  if (typeof type !== 'string' || type.length === 0 || type.length > 200) throw new InvalidOptionError('type', type, 'a non-empty string of at most 200 characters');
  if (schema !== undefined && !isStandardSchema(schema)) {
    throw new InvalidOptionError('schema', schema, 'a Standard Schema (zod, valibot, arktype…): an object whose "~standard" property has version 1 and a validate function');
  }
  if (handler !== undefined && typeof handler !== 'function') throw new InvalidOptionError('handler', handler, 'a function (payload, ctx) => result');
  // Refused here, where the mistake is, rather than in whichever process enqueues first.
  resolveTaskOptions(options);
  return Object.freeze({ type, schema, handler, options });
}

/** True for what {@link defineTask} returns. */
export function isTypedTask(value: unknown): value is AnyTypedTask {
  return value !== null && typeof value === 'object' && typeof (value as { type?: unknown }).type === 'string' && 'handler' in value && 'schema' in value;
}

function isStandardSchema(value: unknown): value is StandardSchemaV1 {
  const props = (value as { '~standard'?: { version?: unknown; validate?: unknown } } | null)?.['~standard'];
  return props !== undefined && props !== null && props.version === 1 && typeof props.validate === 'function';
}

/**
 * Runs the task's schema over a payload: resolves the schema's output, or throws
 * {@link InvalidPayloadError} whose `path` is the first issue's, under `path` (`payload.file`).
 */
export async function checkPayload(task: AnyTypedTask, payload: unknown, path: string): Promise<unknown> {
  if (task.schema === undefined) return payload;
  const result = await task.schema['~standard'].validate(payload);
  if (result.issues === undefined) return result.value;
  const issues = result.issues.map((issue) => ({ path: issuePath(path, issue.path), message: issue.message }));
  const shown = issues
    .slice(0, 3)
    .map((issue) => `${issue.path}: ${issue.message}`)
    .join('; ');
  const more = issues.length > 3 ? ` (and ${issues.length - 3} more)` : '';
  throw new InvalidPayloadError(issues[0]?.path ?? path, `the schema of task "${task.type}" refused it: ${shown}${more}`, issues);
}

/**
 * The kernel's handler for a definition: the stored payload is what the schema accepted at
 * enqueue; it is parsed again here so the handler gets the schema's output (defaults, transforms,
 * dates). A payload the schema no longer accepts (the schema changed since) fails the promise
 * at once, with `INVALID_PAYLOAD`: no retry would make it valid.
 */
export function handlerOf(task: AnyTypedTask, handler: TaskHandler): TaskHandler {
  if (task.schema === undefined) return handler;
  const parse = async (payload: unknown, id: string) => {
    try {
      return await checkPayload(task, payload, 'payload');
    } catch (error) {
      throw new NonRetryableError('INVALID_PAYLOAD', `stored payload of promise ${id}: ${(error as Error).message}`, { cause: error });
    }
  };
  // A batched task's handler receives an array: the schema is each payload's.
  if (task.options?.batch !== undefined) {
    return async (payloads: unknown[], ctx: TaskContext) => handler(await Promise.all(payloads.map((payload, index) => parse(payload, ctx.batch?.ids[index] ?? ctx.id))), ctx);
  }
  return async (payload: unknown, ctx: TaskContext) => handler(await parse(payload, ctx.id), ctx);
}

function issuePath(base: string, segments: StandardSchemaV1.Issue['path']): string {
  let path = base;
  for (const segment of segments ?? []) {
    const key = typeof segment === 'object' && segment !== null ? segment.key : segment;
    if (typeof key === 'number') path += `[${key}]`;
    else if (typeof key === 'string' && /^[A-Za-z_$][\w$]*$/.test(key)) path += `.${key}`;
    else path += `[${JSON.stringify(String(key))}]`;
  }
  return path;
}
