import type { Compilable, Kysely, RawBuilder, SelectQueryBuilder } from 'kysely';
import type { Database } from './schema.js';
import type { SqlDialect } from './sql-dialect.js';

/**
 * The row locks a statement takes where the dialect has them (PostgreSQL). SQLite runs one
 * writer at a time, so there the same statement is compiled without them.
 */
export type RowLock = 'none' | 'share' | 'update' | 'update skip locked';

/** What a statement declares about itself beside its SQL; the connections act on it. */
export interface StatementTraits {
  readonly locks: RowLock;
  /**
   * A commit after this statement changed a row must wake other processes (claimers, result
   * waiters): PostgreSQL sends a NOTIFY with that commit; SQLite needs nothing, other processes
   * see any commit in `PRAGMA data_version`.
   */
  readonly wakes: boolean;
}

/** What a statement's build function receives. */
export interface StatementTools<Args> {
  readonly db: Kysely<Database>;
  /** Marks where the named argument goes; bound at each run. */
  p<K extends keyof Args & string>(name: K): Args[K];
  /** Takes the statement's declared lock on `query` (or on its table `of`); nothing where the dialect has no row locks. */
  lock<DB, TB extends keyof DB, O>(query: SelectQueryBuilder<DB, TB, O>, of?: TB & string): SelectQueryBuilder<DB, TB, O>;
  /** `column IN (list)`, the list bound as one argument. */
  inList(column: string, list: unknown): RawBuilder<boolean>;
}

/** A statement as written: its traits and how to build it with Kysely, for any dialect. */
export interface StatementDefinition<Args, Row> {
  readonly traits: StatementTraits;
  readonly build: (tools: StatementTools<Args>) => Compilable<Row>;
}

/**
 * A statement compiled for one dialect, run many times with named arguments.
 *
 * Why built once: compiling a Kysely query costs more than SQLite takes to run it; building each
 * statement once and binding arguments by name keeps Kysely the one query layer (the same builder
 * compiles for SQLite and PostgreSQL) without paying for it per call.
 */
export interface Statement<Args = any, Row = any> {
  /** `group.name` in the statement table. */
  readonly name: string;
  readonly sql: string;
  readonly traits: StatementTraits;
  /** Per positional parameter of `sql`: the argument's name, or a constant Kysely bound itself. */
  readonly slots: ReadonlyArray<string | { readonly constant: unknown }>;
  /** The positional parameters for `args`. */
  bind(args: Args): unknown[];
  /** Type only: the rows it returns. */
  readonly row?: Row;
}

/**
 * Declares a statement: whether it locks rows and whether its commit wakes other processes,
 * and its SQL.
 *
 * @example
 * ```ts
 * export const statusOf = defineStatement({ locks: 'share', wakes: false }, ({ db, p, lock }: StatementTools<{ id: number }>) =>
 *   lock(db.selectFrom('promises').select('status').where('id', '=', p('id'))),
 * );
 * ```
 */
export function defineStatement<Args extends object, Row>(
  traits: StatementTraits,
  build: (tools: StatementTools<Args>) => Compilable<Row>,
): StatementDefinition<Args, Row> {
  return { traits, build };
}

class NamedParameter {
  constructor(readonly name: string) {}
}

/** Compiles `definition` for `dialect`, once. */
export function compileStatement<Args, Row>(name: string, definition: StatementDefinition<Args, Row>, dialect: SqlDialect): Statement<Args, Row> {
  const { traits } = definition;
  const tools: StatementTools<Args> = {
    db: dialect.builder,
    p: ((parameter: string) => new NamedParameter(parameter)) as never,
    lock: (query, of) => {
      if (traits.locks === 'none') throw new Error(`statement ${name} takes a row lock but declares none`);
      if (!dialect.rowLocks) return query;
      const locked = traits.locks === 'share' ? query.forShare(of) : query.forUpdate(of);
      return traits.locks === 'update skip locked' ? locked.skipLocked() : locked;
    },
    inList: (column, list) => dialect.inList(column, list),
  };
  const compiled = definition.build(tools).compile();
  const slots = compiled.parameters.map((value) => (value instanceof NamedParameter ? value.name : { constant: value }));
  const encode = (value: unknown): unknown => {
    // better-sqlite3 binds booleans as errors and undefined as a missing parameter.
    if (value === undefined) return null;
    if (typeof value === 'boolean') return value ? 1 : 0;
    if (Array.isArray(value)) return dialect.encodeList(value);
    return value;
  };
  return {
    name,
    sql: compiled.sql,
    traits,
    slots,
    bind: (args) => slots.map((slot) => encode(typeof slot === 'string' ? (args as Record<string, unknown>)[slot] : slot.constant)),
  };
}
