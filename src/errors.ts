/**
 * Typed errors. Every failure a caller can act on is a subclass of {@link PromisedError} with a
 * stable string `code`; branch on `code`, since errors read back from the database are plain
 * `{ code, message }` objects, not instances.
 *
 * @example
 * ```ts
 * try { await engine.enqueue('nope', {}); }
 * catch (err) { if (err instanceof PromisedError && err.code === 'UNKNOWN_TASK_TYPE') … }
 * ```
 */
export class PromisedError extends Error {
  /** A stable, machine-readable reason, for example `UNKNOWN_TASK_TYPE`. */
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** `enqueue` named a type that no `engine.task()` registered. */
export class UnknownTaskTypeError extends PromisedError {
  constructor(readonly type: string, known: readonly string[]) {
    super(
      'UNKNOWN_TASK_TYPE',
      `unknown task type "${type}"; register it with engine.task("${type}", handler) first` +
        (known.length ? ` (known: ${known.join(', ')})` : ''),
    );
  }
}

/**
 * A payload, result or event that cannot be stored as JSON and read back unchanged, or a
 * payload that its task's schema refused (then `issues` lists every issue with its path).
 */
export class InvalidPayloadError extends PromisedError {
  constructor(
    readonly path: string,
    reason: string,
    readonly issues: ReadonlyArray<{ readonly path: string; readonly message: string }> = [],
  ) {
    super('INVALID_PAYLOAD', issues.length > 0 ? `value at ${path} is invalid: ${reason}` : `value at ${path} is not JSON-serialisable: ${reason}`);
  }
}

/** An option out of its documented range (priority, delay, retries, timeout, concurrency…). */
export class InvalidOptionError extends PromisedError {
  constructor(readonly option: string, readonly value: unknown, expected: string) {
    super('INVALID_OPTION', `option ${option} = ${describe(value)} is invalid: expected ${expected}`);
  }
}

/** A cron expression or time zone that the cron library cannot use. */
export class InvalidScheduleError extends PromisedError {
  constructor(code: 'INVALID_CRON' | 'INVALID_TIMEZONE', readonly schedule: string, reason: string) {
    super(code, `periodic "${schedule}": ${reason}`);
  }
}

/** A periodic schedule asked for by name that this process does not register (`triggerSchedule`). */
export class ScheduleNotRegisteredError extends PromisedError {
  constructor(readonly schedule: string, registered: string[]) {
    super('SCHEDULE_NOT_REGISTERED', `periodic "${schedule}" is not registered in this process (registered: ${registered.join(', ') || 'none'}); register it here (the dashboard: --tasks), or trigger it where it is`);
  }
}

/** An inbox message the inbox cannot accept (no id, a bad receivedAt). */
export class InvalidMessageError extends PromisedError {
  constructor(readonly inbox: string, reason: string) {
    super('INVALID_MESSAGE', `inbox "${inbox}": ${reason}`);
  }
}

/** `dependsOn` named a promise id that does not exist. */
export class UnknownDependencyError extends PromisedError {
  constructor(readonly dependencyId: string) {
    super('UNKNOWN_DEPENDENCY', `dependsOn names promise "${dependencyId}", which does not exist`);
  }
}

/** `enqueueGraph` was given a graph whose dependencies form a cycle. */
export class DependencyCycleError extends PromisedError {
  constructor(readonly cycle: readonly string[]) {
    super('DEPENDENCY_CYCLE', `dependency cycle: ${cycle.join(' -> ')}`);
  }
}

/** No promise (or workflow) with this id. */
export class NotFoundError extends PromisedError {
  constructor(readonly id: string, what = 'promise') {
    super('NOT_FOUND', `no ${what} with id "${id}"`);
  }
}

/** The machine refused the event in the promise's current state (for example retrying a completed promise). */
export class InvalidTransitionError extends PromisedError {
  constructor(readonly id: string, readonly status: string, readonly event: string) {
    super('INVALID_TRANSITION', `promise ${id} is ${status}; ${event} is not allowed from ${status}`);
  }
}

/** `result()` was given a promise that failed for good; `error` is what it failed with. */
export class PromiseFailedError extends PromisedError {
  constructor(readonly id: string, readonly error: { code: string; message: string }) {
    super('PROMISE_FAILED', `promise ${id} failed: ${error.code}: ${error.message}`);
  }
}

/** A wait (`result({ timeout })`) or a handler (`task(…, { timeout })`) ran out of time. */
export class TimeoutError extends PromisedError {
  constructor(message: string) {
    super('TIMEOUT', message);
  }
}

/** Raised inside a handler's `AbortSignal` when its promise is cancelled. */
export class CancelledError extends PromisedError {
  constructor(readonly id: string) {
    super('CANCELLED', `promise ${id} was cancelled`);
  }
}

/**
 * Thrown by a handler: the failure is final, whatever attempts are left (a revoked token, a
 * request the upstream will never accept). The promise fails with this `code`.
 *
 * @example
 * ```ts
 * throw new NonRetryableError('FORBIDDEN', 'token revoked');
 * ```
 */
export class NonRetryableError extends PromisedError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/**
 * Thrown by a handler: the attempt failed, and the next one must not start sooner than
 * `retryAfterMs` (an upstream's 429 with Retry-After). Counts as an attempt like any failure.
 *
 * @example
 * ```ts
 * throw new RetryAfterError(30_000, 'upstream answered 429');
 * ```
 */
export class RetryAfterError extends PromisedError {
  constructor(
    readonly retryAfterMs: number,
    message: string,
    options?: { cause?: unknown },
  ) {
    super('RETRY_AFTER', message, options);
  }
}

/** The database could not be opened or written (missing folder, read-only file, not ours). */
export class DatabaseError extends PromisedError {
  constructor(
    code:
      | 'DATABASE_DIRECTORY_MISSING'
      | 'DATABASE_READ_ONLY'
      | 'DATABASE_NOT_PROMISED'
      | 'DATABASE_SCHEMA_TOO_NEW'
      | 'DATABASE_UNAVAILABLE'
      | 'DATABASE_FULL'
      | 'DATABASE_BUSY'
      | 'DATABASE_CORRUPT',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
  }
}

/** An engine method was called in a lifecycle phase that does not allow it. */
export class EngineStateError extends PromisedError {
  constructor(code: 'ENGINE_STOPPED' | 'DUPLICATE_TASK', message: string) {
    super(code, message);
  }
}

/** Turns anything thrown into an `Error`, so every `catch` deals with one shape. */
export function coerceError(thrown: unknown): Error {
  if (thrown instanceof Error) return thrown;
  return new Error(typeof thrown === 'string' ? thrown : describe(thrown));
}

/** The `{ code, message }` stored for a failure: `PromisedError` codes are kept, anything else is `HANDLER_ERROR`. */
export function errorRecordOf(thrown: unknown): { code: string; message: string } {
  const error = coerceError(thrown);
  const code = error instanceof PromisedError ? error.code : 'HANDLER_ERROR';
  return { code, message: error.message || error.name };
}

function describe(value: unknown): string {
  try {
    return typeof value === 'string' ? JSON.stringify(value) : String(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}
