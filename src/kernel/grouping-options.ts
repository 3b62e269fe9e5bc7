import { InvalidOptionError } from '../errors.js';
import { derivedKey, type KeyOf } from './flow-keys.js';

/**
 * Debounce: enqueues of one key collapse into one pending promise that runs `periodMs` after the
 * last of them (trailing), with the last payload; `maxDelayMs` caps how far a busy key can be
 * pushed back from its first enqueue. Every enqueue returns the id of that one promise.
 *
 * @example
 * ```ts
 * engine.task('reindex', async (payload: { docId: string }) => reindex(payload.docId), {
 *   debounce: { periodMs: 5_000, maxDelayMs: 60_000, key: (payload) => payload.docId },
 * });
 * ```
 */
export interface DebounceOptions<P = any> {
  periodMs: number;
  /** @defaultValue none: a key enqueued more often than `periodMs` waits as long as that lasts */
  maxDelayMs?: number;
  /** @defaultValue one key for the type */
  key?: KeyOf<P>;
}

/**
 * Batching: the handler receives an array of payloads, called once per batch of one key when
 * `size` promises are runnable or the oldest of them has waited `waitMs`; it returns the
 * results in the same order, and each promise settles, retries and dead-letters on its own.
 *
 * @example
 * ```ts
 * engine.task('embed', async (payloads: Array<{ text: string }>) => embedAll(payloads.map((p) => p.text)), {
 *   batch: { size: 100, waitMs: 50 },
 * });
 * ```
 */
export interface BatchOptions<P = any> {
  size: number;
  waitMs: number;
  /** @defaultValue one key for the type: promises of different keys never share a batch */
  key?: KeyOf<P>;
}

export interface DebouncePolicy {
  periodMs: number;
  maxDelayMs: number | null;
  keyOf: KeyOf | null;
}

export interface BatchPolicy {
  size: number;
  waitMs: number;
  keyOf: KeyOf | null;
}

const MAX_PERIOD_MS = 366 * 24 * 3600_000;
const MAX_BATCH = 10_000;

/** Validates `debounce`; `null` when absent. */
export function resolveDebounce(value: unknown): DebouncePolicy | null {
  if (value === undefined) return null;
  const options = shape('debounce', value, ['periodMs', 'maxDelayMs', 'key'], '{ periodMs, maxDelayMs?, key? }');
  const periodMs = integer('debounce.periodMs', options.periodMs, 1, MAX_PERIOD_MS);
  return {
    periodMs,
    // Below the period it would cap every enqueue, the first one too: that is no debounce.
    maxDelayMs: options.maxDelayMs === undefined ? null : integer('debounce.maxDelayMs', options.maxDelayMs, periodMs, MAX_PERIOD_MS),
    keyOf: keyFunction('debounce.key', options.key),
  };
}

/** Validates `batch`; `null` when absent. */
export function resolveBatch(value: unknown): BatchPolicy | null {
  if (value === undefined) return null;
  const options = shape('batch', value, ['size', 'waitMs', 'key'], '{ size, waitMs, key? }');
  return {
    size: integer('batch.size', options.size, 1, MAX_BATCH),
    waitMs: integer('batch.waitMs', options.waitMs, 0, MAX_PERIOD_MS),
    keyOf: keyFunction('batch.key', options.key),
  };
}

/** The key a promise is debounced or batched under: its key function's answer, or the type's one key. */
export function groupKeyOf(option: 'debounce.key' | 'batch.key', keyOf: KeyOf | null, payload: unknown): string {
  return keyOf === null ? '' : derivedKey(option, keyOf, payload);
}

/**
 * An object with only the fields `known`: a misspelt or foreign name (`maxWaitMs`, `maxSize`)
 * is refused rather than silently ignored, so nobody relies on a bound that does not hold.
 */
function shape(option: string, value: unknown, known: readonly string[], expected: string): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new InvalidOptionError(option, value, expected);
  for (const name of Object.keys(value)) {
    if (!known.includes(name)) throw new InvalidOptionError(`${option}.${name}`, (value as Record<string, unknown>)[name], `no such field: ${option} is ${expected}`);
  }
  return value as Record<string, unknown>;
}

function integer(option: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) throw new InvalidOptionError(option, value, `an integer from ${min} to ${max}`);
  return value;
}

function keyFunction(option: string, value: unknown): KeyOf | null {
  if (value === undefined) return null;
  if (typeof value !== 'function') throw new InvalidOptionError(option, value, 'a function (payload) => string');
  return value as KeyOf;
}
