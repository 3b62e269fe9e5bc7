import { PromisedError } from '../errors.js';

/** Exit codes of the `promised` command. */
export const EXIT = {
  ok: 0,
  /** The command ran and failed: a promise failed, a wait timed out, a worker would not stop. */
  failure: 1,
  /** The command was refused before doing anything: a bad argument, module or database. */
  badInput: 2,
  /** Interrupted by SIGINT (128 + 2). */
  interrupted: 130,
  /** Interrupted by SIGTERM (128 + 15). */
  terminated: 143,
} as const;

/**
 * A refusal or failure of the command line itself (not of the engine), with a stable `code` like
 * the engine's errors and the exit code it deserves.
 *
 * @example
 * ```ts
 * throw new CliError('INVALID_JSON', 'JSON payload does not parse: Unexpected token', EXIT.badInput);
 * ```
 */
export class CliError extends PromisedError {
  constructor(code: string, message: string, readonly exitCode: number = EXIT.badInput, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

// Engine codes that describe something that happened while running, not a bad request: every
// other PromisedError code is a refusal at the boundary (bad argument, unknown type, wrong
// database...) and exits 2.
const RUNTIME_CODES = new Set(['PROMISE_FAILED', 'TIMEOUT', 'CANCELLED', 'ENGINE_STOPPED', 'LEASE_LOST', 'DATABASE_UNAVAILABLE']);

/** The one place that decides the exit code of a failed command. */
export function exitCodeOf(error: unknown): number {
  if (error instanceof CliError) return error.exitCode;
  if (error instanceof PromisedError) return RUNTIME_CODES.has(error.code) ? EXIT.failure : EXIT.badInput;
  return EXIT.failure;
}

/** One line for stderr: `promised: CODE: message`, with any newline in the message folded away. */
export function describeError(error: unknown): string {
  if (error instanceof PromisedError) return `promised: ${error.code}: ${oneLine(error.message)}`;
  const err = error instanceof Error ? error : new Error(String(error));
  const code = (err as { code?: unknown }).code;
  return `promised: ${typeof code === 'string' ? `${code}: ` : ''}${oneLine(err.message || err.name)}`;
}

/** The first line of `text`, trimmed: error messages from imports and SQLite may carry stacks. */
export function oneLine(text: string): string {
  return (text.split('\n').find((line) => line.trim().length > 0) ?? '').trim();
}
