import { DatabaseError } from '../../errors.js';

/** A PostgreSQL error code (SQLSTATE) or a Node socket error code, if `error` carries one. */
export function codeOf(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : '';
}

/** Another transaction got in the way: running the whole transaction again is safe and will likely succeed. */
export function isConflict(error: unknown): boolean {
  const code = codeOf(error);
  // serialization_failure, deadlock_detected, lock_not_available; unique_violation: two
  // transactions inserted the same idempotency key, and the loser now finds the winner's row.
  return code === '40001' || code === '40P01' || code === '55P03' || code === '23505';
}

/** The connection (or the server) went away: the transaction did not commit, and a new connection may work. */
export function isConnectionLoss(error: unknown): boolean {
  const code = codeOf(error);
  if (code.startsWith('08')) return true; // connection_exception
  // admin_shutdown, crash_shutdown, cannot_connect_now (starting up or shutting down).
  if (code === '57P01' || code === '57P02' || code === '57P03') return true;
  if (['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH'].includes(code)) return true;
  const message = error instanceof Error ? error.message : '';
  return /Connection terminated|Client has encountered a connection error|connection is closed|Client was closed/i.test(message);
}

/** Turns an error from opening a PostgreSQL database into the `DatabaseError` SQLite would give for the same situation. */
export function toOpenError(error: unknown, where: string): DatabaseError {
  if (error instanceof DatabaseError) return error;
  const code = codeOf(error);
  const message = error instanceof Error ? error.message : String(error);
  // insufficient_privilege, read_only_sql_transaction (a standby, or default_transaction_read_only).
  if (code === '42501' || code === '25006') {
    return new DatabaseError('DATABASE_READ_ONLY', `PostgreSQL database ${where} does not let this user write (${message}); promised needs to create tables and write to them`, { cause: error });
  }
  if (code === '3D000') {
    return new DatabaseError('DATABASE_UNAVAILABLE', `PostgreSQL database ${where} does not exist (${message}); create it first (createdb)`, { cause: error });
  }
  if (code === '28P01' || code === '28000') {
    return new DatabaseError('DATABASE_UNAVAILABLE', `PostgreSQL at ${where} refused the login (${message}); check the user and password in the URL`, { cause: error });
  }
  return new DatabaseError('DATABASE_UNAVAILABLE', `cannot open PostgreSQL database ${where}: ${message}`, { cause: error });
}
