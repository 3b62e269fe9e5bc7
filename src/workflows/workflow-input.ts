import { InvalidOptionError } from '../errors.js';

/** The longest idempotency key (or event type) stored, as for `enqueue` keys. */
export const MAX_KEY_LENGTH = 512;

// U+0000 (PostgreSQL refuses it in text) and unpaired UTF-16 surrogates (no encoding can store them).
const UNSTORABLE = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * An idempotency key or an event type as given by a caller: a non-empty string of at most
 * {@link MAX_KEY_LENGTH} characters that every backend can store. Refused before anything is written.
 */
export function storableKey(option: string, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_KEY_LENGTH) {
    throw new InvalidOptionError(option, value, `a non-empty string of at most ${MAX_KEY_LENGTH} characters`);
  }
  if (UNSTORABLE.test(value)) throw new InvalidOptionError(option, value, 'text without U+0000 or unpaired UTF-16 surrogates (a database cannot store them)');
  return value;
}

/** The optional `key` of an options object (`undefined` when not given). */
export function optionalKey(options: { key?: unknown } | undefined): string | undefined {
  if (options !== undefined && (options === null || typeof options !== 'object')) throw new InvalidOptionError('options', options, 'an object such as { key }');
  return options?.key === undefined ? undefined : storableKey('key', options.key);
}
