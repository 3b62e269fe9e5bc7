import { InvalidOptionError } from '../errors.js';
import { checkedKey, derivedKey, type KeyOf } from './flow-keys.js';
import type { BatchOptions, DebounceOptions } from './grouping-options.js';

export type { KeyOf } from './flow-keys.js';

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
  /**
   * Enqueues of one key within `periodMs` collapse into one promise that runs `periodMs` after
   * the last of them, with the last payload; every enqueue returns its id.
   */
  debounce?: DebounceOptions;
  /**
   * The handler receives `payloads[]` (and returns `results[]` in the same order), called once
   * per batch when `size` promises of one key are runnable or the oldest has waited `waitMs`.
   */
  batch?: BatchOptions;
  /**
   * How long an idempotency `key` given at enqueue is remembered after its promise settles, ms:
   * within it a repeat returns the first id, after it a new promise is created.
   * @defaultValue none: remembered as long as the promise's row is kept (`resultTtl`)
   */
  keyTtl?: number;
  /**
   * A promise not started within this many ms of becoming runnable fails with `EXPIRED`
   * instead of running (a schedule-to-start deadline; its first start only).
   */
  expireIn?: number;
}

/** The flow policy of a type, resolved once at registration. */
export interface FlowPolicy {
  keyLimit: number | null;
  keyOf: KeyOf | null;
  globalCap: number | null;
  rate: { limit: number; periodMs: number; keyOf: KeyOf | null } | null;
}

const MAX_LIMIT = 1_000_000;
const MAX_PERIOD_MS = 366 * 24 * 3600_000;

/** Validates the flow options of a task; `null` when it has none (the claim's fast path). */
export function resolveFlowOptions(options: FlowOptions): FlowPolicy | null {
  const { concurrency, globalConcurrency, rateLimit } = options;
  if (options.batch !== undefined) {
    // A batch is one handler call for many rows: what a per-row limit or a debounce would count
    // there is not defined yet, so the combination is refused rather than half enforced.
    for (const other of ['concurrency', 'globalConcurrency', 'rateLimit', 'debounce'] as const) {
      if (options[other] !== undefined) throw new InvalidOptionError(other, options[other], 'nothing beside batch (not supported together)');
    }
  }
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
