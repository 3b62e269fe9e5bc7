import { createRequire } from 'node:module';
import type * as Pino from 'pino';
import type { Logger } from 'pino';
import { InvalidOptionError } from '../errors.js';
import { resolveFlowOptions, type FlowOptions, type FlowPolicy } from './flow-options.js';
import { resolveBatch, resolveDebounce, type BatchPolicy, type DebouncePolicy } from './grouping-options.js';
import { MAX_TIMER_MS } from './timers.js';

/** A source of the current time, injectable so tests control it. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
}

/** Options of the engine itself, as {@link createEngine} takes them (beside `inspect`). */
export interface EngineOptions {
  /**
   * Where promises live: an SQLite file path, or `':memory:'`.
   * @defaultValue `'./promised.db'`
   */
  database?: string;
  /**
   * Handlers running at once in this process.
   * @defaultValue 4
   */
  concurrency?: number;
  /**
   * `true`: `enqueue` runs the promise (and every promise it makes runnable) to the end before
   * it returns, ignoring delays; no `start()` needed. For tests and scripts.
   * @defaultValue false
   */
  immediate?: boolean;
  /** A pino logger; defaults to one on stderr at level `PROMISED_LOG_LEVEL` or `warn`. */
  logger?: Logger;
  /**
   * How long a claim stays valid without a heartbeat; a process that died is presumed dead this
   * long after its last heartbeat and its promises are recovered.
   * @defaultValue 30_000
   */
  leaseMs?: number;
  /**
   * SQLite `synchronous`: `NORMAL` survives a crash of the process; `FULL` also survives power loss.
   * @defaultValue 'NORMAL'
   */
  synchronous?: 'NORMAL' | 'FULL';
  /**
   * How often to look for work committed by *other* processes sharing the file (a read of
   * `PRAGMA data_version`, no table scan). 0 turns it off.
   * @defaultValue 50
   */
  changeCheckIntervalMs?: number;
  /**
   * How long `stop()` waits for running handlers before releasing their claims.
   * @defaultValue 30_000
   */
  stopTimeoutMs?: number;
  /** The clock; tests inject one. @defaultValue `Date` */
  clock?: Clock;
  /**
   * How long finished promises (and their results) are kept before cleanup removes them, ms;
   * a task's own `resultTtl` wins.
   * @defaultValue 604_800_000 (7 days)
   */
  resultTtl?: number;
  /**
   * How often a started engine removes expired promises, in bounded batches, ms. 0 turns it off.
   * @defaultValue 3_600_000
   */
  cleanupIntervalMs?: number;
}

export interface ResolvedEngineOptions {
  database: string;
  concurrency: number;
  immediate: boolean;
  logger: Logger;
  leaseMs: number;
  heartbeatMs: number;
  synchronous: 'NORMAL' | 'FULL';
  changeCheckIntervalMs: number;
  stopTimeoutMs: number;
  clock: Clock;
  resultTtl: number;
  cleanupIntervalMs: number;
}

/**
 * pino on stderr at `PROMISED_LOG_LEVEL` or `warn`. Loaded only when no logger is given: the
 * command line passes its own, and would otherwise load pino twice over.
 */
function defaultLogger(): Logger {
  const { pino } = createRequire(import.meta.url)('pino') as typeof Pino;
  return pino({ name: 'promised', level: process.env.PROMISED_LOG_LEVEL ?? 'warn' }, pino.destination(2));
}

/** Validates what the user passed and fills in every default, once. */
export function resolveEngineOptions(options: EngineOptions = {}): ResolvedEngineOptions {
  const database = options.database ?? process.env.PROMISED_DB ?? './promised.db';
  if (typeof database !== 'string' || database.length === 0) throw new InvalidOptionError('database', database, 'a file path or ":memory:"');
  const concurrency = integerIn('concurrency', options.concurrency ?? 4, 1, 10_000);
  const leaseMs = integerIn('leaseMs', options.leaseMs ?? 30_000, 100, 24 * 3600_000);
  const synchronous = options.synchronous ?? 'NORMAL';
  if (synchronous !== 'NORMAL' && synchronous !== 'FULL') throw new InvalidOptionError('synchronous', synchronous, '"NORMAL" or "FULL"');
  return {
    database,
    concurrency,
    immediate: options.immediate ?? false,
    logger: options.logger ?? defaultLogger(),
    leaseMs,
    // Three heartbeats per lease: one late heartbeat does not lose the claim.
    heartbeatMs: Math.max(50, Math.floor(leaseMs / 3)),
    synchronous,
    changeCheckIntervalMs: integerIn('changeCheckIntervalMs', options.changeCheckIntervalMs ?? 50, 0, 60_000),
    stopTimeoutMs: integerIn('stopTimeoutMs', options.stopTimeoutMs ?? 30_000, 0, 24 * 3600_000),
    clock: options.clock ?? Date,
    resultTtl: integerIn('resultTtl', options.resultTtl ?? 7 * DAY_MS, 0, 100 * 365 * DAY_MS),
    cleanupIntervalMs: integerIn('cleanupIntervalMs', options.cleanupIntervalMs ?? 3_600_000, 0, 365 * DAY_MS),
  };
}

const DAY_MS = 24 * 3600_000;

/** Backoff between attempts. */
export type Backoff = 'exponential' | 'fixed';

/** Options for {@link Engine.task}. */
export interface TaskOptions extends FlowOptions {
  /**
   * Attempts after the first one fails.
   * @defaultValue 0
   */
  retries?: number;
  /**
   * Delay before the first retry, ms; doubled for each later one when `backoff` is `exponential`.
   * @defaultValue 1_000
   */
  retryDelay?: number;
  /** @defaultValue 'exponential' */
  backoff?: Backoff;
  /** Upper bound of one retry delay, ms. @defaultValue 3_600_000 */
  maxRetryDelay?: number;
  /** An attempt running longer fails with `TIMEOUT` and its `ctx.signal` aborts, ms. */
  timeout?: number;
  /** Default priority of this type's promises (higher runs first), -1000…1000. @defaultValue 0 */
  priority?: number;
  /** How long a finished promise of this type is kept, ms. @defaultValue the engine's `resultTtl` */
  resultTtl?: number;
  /** `false`: the handler's return value is not stored (Huey's "store none"). @defaultValue true */
  storeResult?: boolean;
  /**
   * A task type enqueued in the same transaction as each completion, with payload
   * `{ promise: { id, type, status, result } }`: a notification is never lost and never fails the promise.
   */
  onComplete?: string;
  /** A task type enqueued in the same transaction as each final failure, with `{ promise: { id, type, status, error } }`. */
  onFail?: string;
  /**
   * How many times a promise may lose its lease (its worker died or froze mid-attempt) and still
   * be retried. A lost lease counts as an attempt but does not spend `retries`, so a crash never
   * fails a promise that has no retries; a handler that brings its worker down every time fails
   * with `LEASE_EXPIRED` after this many.
   * @defaultValue 10
   */
  maxLeaseLosses?: number;
}

export interface ResolvedTaskOptions {
  /** Flow control; `null` when the type has none. */
  flow: FlowPolicy | null;
  debounce: DebouncePolicy | null;
  batch: BatchPolicy | null;
  /** `null`: a key is remembered while its row lives. */
  keyTtl: number | null;
  /** `null`: no schedule-to-start deadline. */
  expireIn: number | null;
  maxAttempts: number;
  retryDelay: number;
  backoff: Backoff;
  maxRetryDelay: number;
  timeout: number | null;
  priority: number;
  /** `null`: the engine's default. */
  resultTtl: number | null;
  storeResult: boolean;
  onComplete: string | null;
  onFail: string | null;
  maxLeaseLosses: number;
}

export const PRIORITY_RANGE = [-1000, 1000] as const;
export const DEFAULT_MAX_LEASE_LOSSES = 10;
/** The longest `delay`: one year. Longer waits belong to a cron schedule. */
export const MAX_DELAY_MS = 366 * 24 * 3600_000;

export function resolveTaskOptions(options: TaskOptions = {}): ResolvedTaskOptions {
  const backoff = options.backoff ?? 'exponential';
  if (backoff !== 'exponential' && backoff !== 'fixed') throw new InvalidOptionError('backoff', backoff, '"exponential" or "fixed"');
  return {
    maxAttempts: integerIn('retries', options.retries ?? 0, 0, 1_000) + 1,
    retryDelay: integerIn('retryDelay', options.retryDelay ?? 1_000, 0, MAX_DELAY_MS),
    backoff,
    maxRetryDelay: integerIn('maxRetryDelay', options.maxRetryDelay ?? 3_600_000, 0, MAX_DELAY_MS),
    timeout: options.timeout === undefined ? null : integerIn('timeout', options.timeout, 1, MAX_TIMER_MS),
    priority: integerIn('priority', options.priority ?? 0, ...PRIORITY_RANGE),
    resultTtl: options.resultTtl === undefined ? null : integerIn('resultTtl', options.resultTtl, 0, 100 * 365 * DAY_MS),
    storeResult: booleanOption('storeResult', options.storeResult ?? true),
    onComplete: taskTypeName('onComplete', options.onComplete),
    onFail: taskTypeName('onFail', options.onFail),
    maxLeaseLosses: integerIn('maxLeaseLosses', options.maxLeaseLosses ?? DEFAULT_MAX_LEASE_LOSSES, 0, 1_000),
    flow: resolveFlowOptions(options),
    debounce: resolveDebounce(options.debounce),
    batch: resolveBatch(options.batch),
    keyTtl: options.keyTtl === undefined ? null : integerIn('keyTtl', options.keyTtl, 0, 100 * 365 * DAY_MS),
    expireIn: options.expireIn === undefined ? null : integerIn('expireIn', options.expireIn, 1, MAX_DELAY_MS),
  };
}

/** Checks that `value` is an integer within [min, max], or throws {@link InvalidOptionError}. */
export function integerIn(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new InvalidOptionError(name, value, `an integer from ${min} to ${max}`);
  }
  return value;
}

function booleanOption(name: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw new InvalidOptionError(name, value, 'true or false');
  return value;
}

function taskTypeName(name: string, value: unknown): string | null {
  if (value === undefined) return null;
  if (typeof value !== 'string' || value.length === 0) throw new InvalidOptionError(name, value, 'the name of a task type');
  return value;
}
