import { sql, type RawBuilder } from 'kysely';

/**
 * `column = value`, or no condition at all when `value` is null: an optional filter inside a
 * statement built once. The casts type the parameter for PostgreSQL, which is otherwise bound as
 * int8 when null (see pg-statement.ts).
 */
export function equalsIfGiven(column: string, value: unknown): RawBuilder<boolean> {
  return sql<boolean>`(cast(${value} as text) is null or ${sql.ref(column)} = cast(${value} as text))`;
}
