import { InvalidOptionError } from '../errors.js';
import { assertStorableName } from './storable-text.js';

/** A key derived from a promise's payload when it is enqueued. */
export type KeyOf<P = any> = (payload: P) => string;

const MAX_KEY_LENGTH = 256;

/** A key computed by a task's key function, refused unless it is a storable, non-empty string of at most 256 characters. */
export function derivedKey(option: string, keyOf: KeyOf, payload: unknown): string {
  let key: unknown;
  try {
    key = keyOf(payload);
  } catch (error) {
    throw new InvalidOptionError(option, `a function that threw: ${(error as Error)?.message ?? String(error)}`, 'a function (payload) => key that returns a key for every payload');
  }
  return checkedKey(option, key);
}

/** A key given or computed for a limit, a debounce or a batch, refused unless storable. */
export function checkedKey(option: string, key: unknown): string {
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY_LENGTH) throw new InvalidOptionError(option, key, `a non-empty string of at most ${MAX_KEY_LENGTH} characters`);
  assertStorableName(option, key);
  return key;
}

