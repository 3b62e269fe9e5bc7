import { sql, type RawBuilder } from 'kysely';
import { defineStatement, type StatementTools } from '../statement.js';
import type { PromisePageQuery } from '../store.js';
import { equalsIfGiven } from './optional-filter.js';

// One page of the promise list, newest first, by keyset (`id < before`), never OFFSET: a deep
// page costs what the first one does. The scan is bounded below by `floor` as well, so a filter
// that matches few rows reads at most `before - floor` rows by the primary key (the caller picks
// the window) instead of the whole table, and the page says where to go on.
//
// No index of its own: an index led by `status` is one SQLite's planner prefers over the claim
// order index when it has no statistics (migration 0004 dropped one for that); the primary key
// range is what every variant of this statement reads.

/** Promises with `floor <= id < before`, newest first, the given filters applied. */
export const pageOfPromises = defineStatement({ locks: 'none', wakes: false }, ({ db, p }: StatementTools<PromisePageQuery>) =>
  db
    .selectFrom('promises')
    .selectAll()
    .where('id', '<', p('before'))
    .where('id', '>=', p('floor'))
    .where(equalsIfGiven('status', p('status')))
    .where(equalsIfGiven('type', p('type')))
    .where(equalsIfGiven('error_code', p('errorCode')))
    .where(containsIfGiven(['payload', 'error_message'], p('search')))
    .orderBy('id', 'desc')
    .limit(p('limit')),
);

/**
 * `pattern` (a lower-case LIKE pattern, `\` escaping) matches one of `columns` lower-cased, or no
 * condition when it is null. `lower()` on both sides: SQLite's LIKE ignores ASCII case and
 * PostgreSQL's does not.
 */
function containsIfGiven(columns: string[], pattern: unknown): RawBuilder<boolean> {
  const matches = columns.map((column) => sql`lower(coalesce(${sql.ref(column)}, '')) like cast(${pattern} as text) escape '\\'`);
  return sql<boolean>`(cast(${pattern} as text) is null or ${sql.join(matches, sql` or `)})`;
}

/** The newest promise's id (the top of a first page's window). */
export const newestPromiseId = defineStatement({ locks: 'none', wakes: false }, ({ db }: StatementTools<Record<string, never>>) =>
  db.selectFrom('promises').select((eb) => eb.fn.max('id').as('id')),
);
