import { InvalidOptionError } from '../errors.js';
import type { ErrorRecord } from './transition-types.js';

// PostgreSQL refuses U+0000 in text (error 22021); a lone UTF-16 surrogate has no UTF-8 form
// (SQLite stores U+FFFD instead, so a type read back no longer matches). Either way a value
// that looked fine in JavaScript is not what comes back, or cannot be written at all, and one
// such value must never stop a worker: names are refused at the boundary, free text (error
// messages) is made storable the same way on both backends.
const UNSTORABLE = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const UNSTORABLE_ALL = new RegExp(UNSTORABLE.source, 'g');

/** True when `text` holds U+0000 or a lone surrogate: a database cannot store it as it is. */
export function hasUnstorableText(text: string): boolean {
  return UNSTORABLE.test(text);
}

/** `text` with U+0000 and lone surrogates replaced by U+FFFD, as both backends can store it. */
export function storableText(text: string): string {
  return hasUnstorableText(text) ? text.replace(UNSTORABLE_ALL, '\ufffd') : text;
}

/** Refuses a name (type, key) that a database cannot store as it is, with a typed error. */
export function assertStorableName(option: string, value: string): void {
  if (hasUnstorableText(value)) throw new InvalidOptionError(option, value, 'text without U+0000 or unpaired UTF-16 surrogates (a database cannot store them)');
}

/** An error record every backend can store: string fields, storable text, bounded length. */
export function storableError(error: { code: unknown; message: unknown }): ErrorRecord {
  return { code: storableText(textOf(error.code)).slice(0, 200), message: storableText(textOf(error.message)).slice(0, 10_000) };
}

function textOf(value: unknown): string {
  if (typeof value === 'string') return value;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}
