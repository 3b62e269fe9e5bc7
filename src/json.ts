import { InvalidPayloadError } from './errors.js';

/** A value that survives `JSON.stringify` → `JSON.parse` unchanged. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/**
 * Serialises a value for storage, refusing anything JSON would silently change or lose:
 * functions, symbols, BigInt, non-finite numbers, cycles, and Map/Set/class instances (which
 * become `{}`). Objects with `toJSON` (Date) are accepted as JSON defines them.
 *
 * Validation runs before any write, so a refused value leaves the database untouched.
 */
export function toJsonText(value: unknown, what = 'payload'): string {
  assertJsonSafe(value, what, new Set());
  return JSON.stringify(value === undefined ? null : value);
}

/** Parses stored JSON text; `null` text stays `null`. */
export function fromJsonText<T = unknown>(text: string | null): T | null {
  return text === null ? null : (JSON.parse(text) as T);
}

function assertJsonSafe(value: unknown, path: string, ancestors: Set<object>): void {
  switch (typeof value) {
    case 'string':
    case 'boolean':
    case 'undefined':
      return;
    case 'number':
      if (!Number.isFinite(value)) throw new InvalidPayloadError(path, `${value} has no JSON form`);
      return;
    case 'bigint':
      throw new InvalidPayloadError(path, 'BigInt has no JSON form; convert it to a string');
    case 'function':
      throw new InvalidPayloadError(path, 'a function cannot be stored');
    case 'symbol':
      throw new InvalidPayloadError(path, 'a symbol cannot be stored');
  }
  if (value === null) return;
  const object = value as object;
  if (typeof (object as { toJSON?: unknown }).toJSON === 'function') return;
  if (ancestors.has(object)) throw new InvalidPayloadError(path, 'circular reference');
  if (Array.isArray(object)) {
    ancestors.add(object);
    object.forEach((item, index) => assertJsonSafe(item, `${path}[${index}]`, ancestors));
    ancestors.delete(object);
    return;
  }
  const proto = Object.getPrototypeOf(object);
  if (proto !== Object.prototype && proto !== null) {
    const name = (proto as { constructor?: { name?: string } }).constructor?.name ?? 'object';
    throw new InvalidPayloadError(path, `a ${name} instance would not survive JSON; use a plain object or array`);
  }
  ancestors.add(object);
  for (const [key, item] of Object.entries(object)) assertJsonSafe(item, `${path}.${key}`, ancestors);
  ancestors.delete(object);
}
