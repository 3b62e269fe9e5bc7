import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * A short, stable fingerprint of a database, so session ids stay unique when one viewer watches
 * several databases (promise 1 of one file is not promise 1 of another).
 *
 * An SQLite file is named by its host and real path; a PostgreSQL URL by its host, port and
 * database (never its password). `':memory:'` gets a random fingerprint per call: such a
 * database lives and dies with its process.
 *
 * @example
 * ```ts
 * databaseFingerprint('./promised.db'); // 'a1b2c3d4e5f6'
 * ```
 */
export function databaseFingerprint(database: string): string {
  if (database === ':memory:' || database === '') return randomBytes(6).toString('hex');
  let identity: string;
  if (/^postgres(ql)?:\/\//i.test(database)) {
    const url = new URL(database);
    identity = `pg:${url.hostname}:${url.port || '5432'}${url.pathname}`;
  } else {
    const absolute = path.resolve(database);
    let real = absolute;
    try {
      real = fs.realpathSync(absolute);
    } catch {
      // Not created yet: its resolved path names it as well.
    }
    identity = `sqlite:${os.hostname()}:${real}`;
  }
  return createHash('sha256').update(identity).digest('hex').slice(0, 12);
}

/** The inspector session id of a promise: `promised:<fingerprint>:promise:<id>`. */
export function promiseSessionId(fingerprint: string, id: string): string {
  return `promised:${fingerprint}:promise:${id}`;
}

/** The inspector session id of a workflow: `promised:<fingerprint>:workflow:<id>`. */
export function workflowSessionId(fingerprint: string, id: string): string {
  return `promised:${fingerprint}:workflow:${id}`;
}

