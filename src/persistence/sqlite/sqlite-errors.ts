import { DatabaseError } from '../../errors.js';

/**
 * SQLite's failures that a caller can act on become typed errors; the transaction was rolled
 * back, so nothing of it was written. Anything else (a bug, a refused input) passes unchanged.
 */
export function classifySqliteError(error: unknown): unknown {
  const code = (error as { code?: unknown })?.code;
  if (typeof code !== 'string' || !code.startsWith('SQLITE_')) return error;
  const message = (error as Error).message;
  if (code === 'SQLITE_FULL') return new DatabaseError('DATABASE_FULL', `the database or its disk is full: ${message}; nothing of this transaction was written`, { cause: error });
  if (code.startsWith('SQLITE_BUSY')) return new DatabaseError('DATABASE_BUSY', `another process held the write lock too long: ${message}; nothing was written, try again`, { cause: error });
  if (code.startsWith('SQLITE_READONLY')) return new DatabaseError('DATABASE_READ_ONLY', `the database became read-only: ${message}`, { cause: error });
  if (code.startsWith('SQLITE_CORRUPT')) {
    return new DatabaseError(
      'DATABASE_CORRUPT',
      `the database file is damaged (${message}): stop every process using it, then restore it from a backup, or salvage what can be read with: sqlite3 FILE ".recover" | sqlite3 NEW_FILE`,
      { cause: error },
    );
  }
  if (code.startsWith('SQLITE_IOERR') || code === 'SQLITE_CANTOPEN') {
    return new DatabaseError('DATABASE_UNAVAILABLE', `the database cannot be written: ${message}`, { cause: error });
  }
  return error;
}
