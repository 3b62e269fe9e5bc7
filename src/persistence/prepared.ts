import type { Compilable } from 'kysely';

/** A placeholder for a named parameter inside a query built once with Kysely. */
class NamedParameter {
  constructor(readonly name: string) {}
}

/**
 * A statement built once with Kysely and run many times with named arguments.
 *
 * Why: compiling a Kysely query costs more than SQLite takes to run it; building each hot
 * statement once and binding arguments by name keeps Kysely as the one query layer (the same
 * builder compiles for SQLite and PostgreSQL) without paying for it per call.
 */
export interface PreparedQuery<Args> {
  readonly sql: string;
  /** Positional parameters, in the order the compiled SQL expects them. */
  bind(args: Args): unknown[];
}

/** Builds a {@link PreparedQuery}: `build` receives `param(name)` to mark where each argument goes. */
export function prepareQuery<Args extends object>(
  build: (param: <K extends keyof Args & string>(name: K) => Args[K]) => Compilable,
): PreparedQuery<Args> {
  const compiled = build(((name: string) => new NamedParameter(name)) as never).compile();
  const slots = compiled.parameters.map((value) => (value instanceof NamedParameter ? value.name : { constant: value }));
  return {
    sql: compiled.sql,
    bind: (args) => slots.map((slot) => (typeof slot === 'string' ? normalise((args as Record<string, unknown>)[slot]) : slot.constant)),
  };
}

// better-sqlite3 binds booleans as errors and undefined as a missing parameter.
function normalise(value: unknown): unknown {
  if (value === undefined) return null;
  if (typeof value === 'boolean') return value ? 1 : 0;
  return value;
}
