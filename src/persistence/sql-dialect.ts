import { Kysely, type DialectAdapter, type Driver, type QueryCompiler, type RawBuilder } from 'kysely';
import type { Database } from './schema.js';

/**
 * What the SQL of one database differs in, and nothing else: the store and its statements are
 * written once against this (as Kysely's `DialectAdapter` carries its dialect's capabilities).
 *
 * @example
 * ```ts
 * const statement = compileStatement('promises.statusOf', statusOf, sqliteSqlDialect);
 * ```
 */
export interface SqlDialect {
  /** Builds and compiles statements; never runs them (the connection does). */
  readonly builder: Kysely<Database>;
  /**
   * Several transactions write at once, so statements take the row locks they declare
   * (PostgreSQL). Without it (SQLite: one writer at a time) a declared lock is left out.
   */
  readonly rowLocks: boolean;
  /**
   * Each statement reads its own snapshot (PostgreSQL's READ COMMITTED): one that waited on a
   * row lock may have missed rows the holder added, so a sweep is repeated until it finds nothing.
   */
  readonly snapshotPerStatement: boolean;
  /** `column IN (list)`, with the whole list bound as one parameter. */
  inList(column: string, list: unknown): RawBuilder<boolean>;
  /** How a list argument is bound for {@link inList}. */
  encodeList(list: readonly unknown[]): unknown;
}

/** A Kysely that only compiles: statements are built once and run by a dialect's connection. */
export function compileOnlyBuilder(adapter: DialectAdapter, compiler: () => QueryCompiler): Kysely<Database> {
  return new Kysely<Database>({
    dialect: {
      createAdapter: () => adapter,
      createDriver: () => new RefusingDriver(),
      createIntrospector: () => {
        throw new Error('a compile-only builder cannot introspect');
      },
      createQueryCompiler: compiler,
    },
  });
}

// Not Kysely's DummyDriver, which answers every query with no rows: a statement run through the
// builder by mistake must fail loudly, not read as empty.
class RefusingDriver implements Driver {
  async init(): Promise<void> {}
  async acquireConnection(): Promise<never> {
    throw new Error('statements are run by the store connection, not by the builder that compiled them');
  }
  async beginTransaction(): Promise<void> {}
  async commitTransaction(): Promise<void> {}
  async rollbackTransaction(): Promise<void> {}
  async releaseConnection(): Promise<void> {}
  async destroy(): Promise<void> {}
}
