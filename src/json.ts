import { coerceError, InvalidPayloadError } from './errors.js';

/** A value that survives `JSON.stringify` → `JSON.parse` unchanged. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/**
 * How deeply a stored value may nest (objects and arrays). `JSON.stringify` itself overflows the
 * stack a few thousand levels down, less when called deep in a handler's stack.
 */
export const MAX_JSON_DEPTH = 1_000;

/** A path longer than this is shortened in its middle (in the error's `path` and message). */
const MAX_SHOWN_PATH = 160;

/**
 * Serialises a value for storage, refusing anything JSON would silently change or lose:
 * functions, symbols, BigInt, non-finite numbers, cycles, Map/Set/class instances (which become
 * `{}`) and nesting deeper than {@link MAX_JSON_DEPTH}. Objects with `toJSON` (Date) are
 * accepted as JSON defines them, and what their `toJSON` returns is checked in turn.
 *
 * Every refusal is an `InvalidPayloadError` naming the path of the culprit, a `toJSON` or getter
 * that throws included. Each getter and `toJSON` runs once: the value checked is the value
 * stored. Validation runs before any write, so a refused value leaves the database untouched.
 *
 * @example
 * ```ts
 * toJsonText({ when: new Date(0) }); // '{"when":"1970-01-01T00:00:00.000Z"}'
 * toJsonText({ n: 1n });             // throws InvalidPayloadError: value at payload.n is not JSON-serialisable: BigInt …
 * ```
 */
export function toJsonText(value: unknown, what = 'payload'): string {
  return JSON.stringify(plainJson(value, what, '', 1, new Set()) ?? null);
}

/** Parses stored JSON text; `null` text stays `null`. */
export function fromJsonText<T = unknown>(text: string | null): T | null {
  return text === null ? null : (JSON.parse(text) as T);
}

/**
 * `value` as plain JSON data (a copy), or `undefined` where JSON leaves a value out (an object's
 * key) or writes `null` (an array's item). `key` is what JSON.stringify passes to `toJSON`;
 * `depth` counts the objects and arrays `value` sits in, itself included.
 */
function plainJson(value: unknown, path: string, key: string, depth: number, ancestors: Set<object>): Json | undefined {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'undefined':
      return undefined;
    case 'number':
      if (!Number.isFinite(value)) throw refuse(path, `${value} has no JSON form`);
      return value;
    case 'bigint':
      throw refuse(path, 'BigInt has no JSON form; convert it to a string');
    case 'function':
      throw refuse(path, 'a function cannot be stored');
    case 'symbol':
      throw refuse(path, 'a symbol cannot be stored');
  }
  if (value === null) return null;
  const object = value as object;
  const toJSON = read(path, () => (object as { toJSON?: unknown }).toJSON);
  if (typeof toJSON === 'function') {
    const replaced: unknown = read(path, () => toJSON.call(object, key), 'its toJSON() threw');
    // JSON serialises what toJSON returned as it is, without calling its toJSON again.
    return plainData(replaced, `${path}.toJSON()`, depth, ancestors);
  }
  return plainData(object, path, depth, ancestors);
}

/** {@link plainJson} for a value whose own `toJSON`, if any, has already run. */
function plainData(value: unknown, path: string, depth: number, ancestors: Set<object>): Json | undefined {
  if (value === null || typeof value !== 'object') return plainJson(value, path, '', depth, ancestors);
  if (depth > MAX_JSON_DEPTH) throw refuse(path, `nested more than ${MAX_JSON_DEPTH} levels deep; flatten it`);
  if (ancestors.has(value)) throw refuse(path, 'circular reference');
  ancestors.add(value);
  try {
    if (Array.isArray(value)) {
      const length = read(path, () => value.length);
      const items: Json[] = [];
      for (let index = 0; index < length; index++) {
        const itemPath = `${path}[${index}]`;
        const item = read(itemPath, () => value[index] as unknown);
        items.push(plainJson(item, itemPath, String(index), depth + 1, ancestors) ?? null);
      }
      return items;
    }
    const proto = read(path, () => Object.getPrototypeOf(value) as object | null);
    if (proto !== Object.prototype && proto !== null) {
      const name = (proto as { constructor?: { name?: string } }).constructor?.name ?? 'object';
      throw refuse(path, `a ${name} instance would not survive JSON; use a plain object or array`);
    }
    const copy: { [key: string]: Json } = {};
    for (const key of read(path, () => Object.keys(value))) {
      const itemPath = `${path}.${key}`;
      const item = read(itemPath, () => (value as Record<string, unknown>)[key]);
      const plain = plainJson(item, itemPath, key, depth + 1, ancestors);
      if (plain === undefined) continue;
      // An own "__proto__" key is data: assigning it would set the copy's prototype instead.
      if (key === '__proto__') Object.defineProperty(copy, key, { value: plain, enumerable: true, writable: true, configurable: true });
      else copy[key] = plain;
    }
    return copy;
  } finally {
    ancestors.delete(value);
  }
}

/** Runs user code met while reading a value (a getter, a proxy trap, `toJSON`); what it throws is refused at `path`. */
function read<T>(path: string, get: () => T, what = 'reading it threw'): T {
  try {
    return get();
  } catch (error) {
    const thrown = coerceError(error);
    throw refuse(path, `${what}: ${thrown.message || thrown.name}`);
  }
}

function refuse(path: string, reason: string): InvalidPayloadError {
  const shown = path.length <= MAX_SHOWN_PATH ? path : `${path.slice(0, MAX_SHOWN_PATH / 2)}…${path.slice(-MAX_SHOWN_PATH / 2)}`;
  return new InvalidPayloadError(shown, reason);
}
