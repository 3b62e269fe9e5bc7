import type { Logger } from 'pino';
import type { ResolvedTaskOptions } from './options.js';

/** What a handler receives beside its payload. */
export interface TaskContext {
  /** The promise's id. */
  readonly id: string;
  readonly type: string;
  /** 1 for the first attempt. */
  readonly attempt: number;
  readonly maxAttempts: number;
  /**
   * Aborts when the promise is cancelled, its `timeout` passes, its lease is lost, or the engine
   * stops for good; `signal.reason` says which (a `PromisedError` with a `code`).
   */
  readonly signal: AbortSignal;
  /**
   * A key that is the same on every attempt of this promise: hand it to external systems as an
   * idempotency key, since a handler may run again after a crash (at-least-once).
   */
  readonly key: string;
  /** Reports progress: emitted at once, persisted at most every 250 ms. */
  progress(current: number, total: number): void;
  /** A child logger carrying the promise id, type and attempt. */
  readonly logger: Logger;
  /**
   * The results of the promises this one depends on (its `dependsOn`), by id, read in one query
   * when called. A parent whose handler returned nothing (or with `storeResult: false`) maps to
   * `null`; one removed by cleanup is absent.
   */
  parents<R = unknown>(): Promise<Record<string, R>>;
  /**
   * Set for a batched task (`batch` option): the promises of this call, in the order of the
   * payloads. `id`, `attempt` and `parents()` are the first one's; `keys[i]` is promise i's
   * idempotency key (the same on every attempt of it, whichever batch it rides in).
   */
  readonly batch?: { readonly ids: readonly string[]; readonly keys: readonly string[] };
}

/** A task handler: receives the payload, returns a JSON-serialisable result (or nothing). */
export type TaskHandler<P = any, R = unknown> = (payload: P, ctx: TaskContext) => R | Promise<R>;

/**
 * The handler of a batched task (the `batch` option): the payloads of one batch, in claim order,
 * and `ctx.batch.ids` beside them. It returns one result per payload, in the same order (each
 * promise completes with its own; an `Error` entry fails that promise's attempt alone), or
 * nothing (every promise completes without a result). A throw fails every promise's attempt.
 *
 * @example
 * ```ts
 * import { createEngine, type BatchHandler } from 'promised';
 * const engine = await createEngine({ database: ':memory:' });
 * const embed: BatchHandler<{ text: string }, number> = async (payloads) => payloads.map((p) => p.text.length);
 * engine.task('embed', embed, { batch: { size: 100, waitMs: 50 } });
 * ```
 */
export type BatchHandler<P = any, R = unknown> = (payloads: P[], ctx: TaskContext) => ReadonlyArray<R | Error> | void | Promise<ReadonlyArray<R | Error> | void>;

export interface TaskDefinition {
  type: string;
  handler: TaskHandler;
  options: ResolvedTaskOptions;
}
