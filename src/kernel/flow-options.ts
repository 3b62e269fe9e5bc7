import { InvalidOptionError } from '../errors.js';
import { assertStorableName } from './storable-text.js';

/** A key derived from a promise's payload when it is enqueued. */
export type KeyOf<P = any> = (payload: P) => string;

/** Flow-control options of a task (part of {@link TaskOptions}). */
export interface FlowOptions {
  /** At most `limit` promises of this type running per key, across every process and host. */
  concurrency?: { limit: number; key?: KeyOf };
  /** At most this many promises of this type running at once, across every process and host. */
  globalConcurrency?: number;
  /**
   * At most `limit` starts per `periodMs` (per key, when given), across every process and host:
   * a sliding window, so no span of `periodMs` ever holds more than `limit` starts.
   */
  rateLimit?: { limit: number; periodMs: number; key?: KeyOf };
}

/** The flow policy of a type, resolved once at registration. */
export interface FlowPolicy {
  keyLimit: number | null;
  keyOf: KeyOf | null;
  globalCap: number | null;
  rate: { limit: number; periodMs: number; keyOf: KeyOf | null } | null;
}

/** Controls the contract names that this version does not build: refused, never silently ignored. */
const NOT_BUILT = ['debounce', 'batch', 'keyTtl', 'expireIn'] as const;
const MAX_LIMIT = 1_000_000;
const MAX_PERIOD_MS = 366 * 24 * 3600_000;
const MAX_KEY_LENGTH = 256;

/** Validates the flow options of a task; `null` when it has none (the claim's fast path). */
export function resolveFlowOptions(options: FlowOptions): FlowPolicy | null {
  for (const unbuilt of NOT_BUILT) {
    if ((options as Record<string, unknown>)[unbuilt] !== undefined) {
      throw new InvalidOptionError(unbuilt, (options as Record<string, unknown>)[unbuilt], 'nothing: not supported yet (docs/flow-control.md)');
    }
  }
  const { concurrency, globalConcurrency, rateLimit } = options;
  if (concurrency === undefined && globalConcurrency === undefined && rateLimit === undefined) return null;
  if (concurrency !== undefined) objectOption('concurrency', concurrency, '{ limit, key? }');
  if (rateLimit !== undefined) objectOption('rateLimit', rateLimit, '{ limit, periodMs, key? }');
  return {
    keyLimit: concurrency === undefined ? null : positive('concurrency.limit', concurrency.limit, MAX_LIMIT),
    keyOf: concurrency === undefined ? null : keyFunction('concurrency.key', concurrency.key),
    globalCap: globalConcurrency === undefined ? null : positive('globalConcurrency', globalConcurrency, MAX_LIMIT),
    rate:
      rateLimit === undefined
        ? null
        : { limit: positive('rateLimit.limit', rateLimit.limit, MAX_LIMIT), periodMs: positive('rateLimit.periodMs', rateLimit.periodMs, MAX_PERIOD_MS), keyOf: keyFunction('rateLimit.key', rateLimit.key) },
  };
}

/**
 * The keys a new promise is counted under: its concurrency key (given at enqueue, or derived
 * from the payload) and its rate key. A key function that throws or returns anything but a
 * non-empty, storable string of at most 256 characters is refused before anything is written.
 */
export function flowKeysOf(policy: FlowPolicy | null, payload: unknown, concurrencyKey: unknown): { flowKey: string | null; rateKey: string | null } {
  if (policy === null) {
    if (concurrencyKey !== undefined) throw new InvalidOptionError('concurrencyKey', concurrencyKey, 'nothing: this task has no concurrency limit');
    return { flowKey: null, rateKey: null };
  }
  const flowKey =
    policy.keyLimit === null
      ? null
      : concurrencyKey !== undefined
        ? checkedKey('concurrencyKey', concurrencyKey)
        : policy.keyOf === null
          ? ''
          : derivedKey('concurrency.key', policy.keyOf, payload);
  if (policy.keyLimit === null && concurrencyKey !== undefined) throw new InvalidOptionError('concurrencyKey', concurrencyKey, 'nothing: this task has no per-key concurrency limit');
  const rateKey = policy.rate === null ? null : policy.rate.keyOf === null ? '' : derivedKey('rateLimit.key', policy.rate.keyOf, payload);
  return { flowKey, rateKey };
}

function derivedKey(option: string, keyOf: KeyOf, payload: unknown): string {
  let key: unknown;
  try {
    key = keyOf(payload);
  } catch (error) {
    throw new InvalidOptionError(option, `a function that threw: ${(error as Error)?.message ?? String(error)}`, 'a function (payload) => key that returns a key for every payload');
  }
  return checkedKey(option, key);
}

function checkedKey(option: string, key: unknown): string {
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY_LENGTH) throw new InvalidOptionError(option, key, `a non-empty string of at most ${MAX_KEY_LENGTH} characters`);
  assertStorableName(option, key);
  return key;
}

function keyFunction(option: string, value: unknown): KeyOf | null {
  if (value === undefined) return null;
  if (typeof value !== 'function') throw new InvalidOptionError(option, value, 'a function (payload) => string');
  return value as KeyOf;
}

function positive(option: string, value: unknown, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) throw new InvalidOptionError(option, value, `an integer from 1 to ${max}`);
  return value;
}

function objectOption(option: string, value: unknown, expected: string): void {
  if (value === null || typeof value !== 'object') throw new InvalidOptionError(option, value, expected);
}
