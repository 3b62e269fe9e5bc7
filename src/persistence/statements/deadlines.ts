import { sql } from 'kysely';
import { defineStatement, type StatementTools } from '../statement.js';

// Schedule-to-start deadlines: pending promises that were never started and passed `start_by`.
// The condition repeats the partial index's (status = 'pending' and start_by is not null)
// literally, so SQLite reads the index, which holds only rows with a deadline.

/** Pending promises of `types` whose start deadline passed before `now`, earliest first; rows another claimer holds are skipped. */
export const overdueUnstarted = defineStatement(
  { locks: 'update skip locked', wakes: false },
  ({ db, p, lock, inList }: StatementTools<{ types: readonly string[]; now: number; limit: number }>) =>
    lock(
      db
        .selectFrom('promises')
        .select(['id', 'type', 'attempts', 'workflow_id', 'invoke_id'])
        .where(sql<boolean>`status = 'pending' and start_by is not null`)
        .where('start_by', '<', p('now'))
        .where(inList('type', p('types')))
        .orderBy('start_by')
        .limit(p('limit')),
    ),
);

/** The earliest start deadline of a pending promise of `types`: a scheduler's due timer fires then. */
export const nextStartBy = defineStatement({ locks: 'none', wakes: false }, ({ db, inList, p }: StatementTools<{ types: readonly string[] }>) =>
  db
    .selectFrom('promises')
    .select((eb) => eb.fn.min<number | null>('start_by').as('at'))
    .where(sql<boolean>`status = 'pending' and start_by is not null`)
    .where(inList('type', p('types'))),
);
