import { sql } from 'kysely';
import { defineStatement, type StatementTools } from '../statement.js';

// Statistics over promises (for stats, dashboards and health checks).

export const countByStatusAndType = defineStatement({ locks: 'none', wakes: false }, ({ db }: StatementTools<Record<string, never>>) =>
  db.selectFrom('promises').select(['status', 'type', (eb) => eb.fn.countAll<number>().as('count')]).groupBy(['status', 'type']),
);

/** The earliest run-at of a pending row already due at `now`. */
export const oldestDueRunAt = defineStatement({ locks: 'none', wakes: false }, ({ db, p }: StatementTools<{ now: number }>) =>
  db.selectFrom('promises').select((eb) => eb.fn.min('run_at').as('at')).where('status', '=', sql.lit('pending')).where('run_at', '<=', p('now')),
);

export const countFinishedSince = defineStatement({ locks: 'none', wakes: false }, ({ db, p }: StatementTools<{ since: number }>) =>
  db
    .selectFrom('promises')
    .select(['status', (eb) => eb.fn.countAll<number>().as('count')])
    .where('completed_at', '>', p('since'))
    .groupBy('status'),
);
