import { sql } from 'kysely';
import { defineStatement, type StatementTools } from '../statement.js';
import { FINISHED_STATUSES } from '../statuses.js';

// Removing finished promises (their edges and history go with them, by cascade). Neither wakes:
// a finished row is nobody's work, and its dependents were released or failed when it finished.

const finished = FINISHED_STATUSES.map((status) => sql.lit(status));

/** Deletes up to `limit` finished rows whose expiry passed. */
export const deleteExpired = defineStatement({ locks: 'none', wakes: false }, ({ db, p }: StatementTools<{ now: number; limit: number }>) =>
  db
    .deleteFrom('promises')
    .where('id', 'in', db.selectFrom('promises').select('id').where('expires_at', '<=', p('now')).where('status', 'in', finished).limit(p('limit'))),
);

/** Deletes up to `limit` rows finished at or before `cutoff`. */
export const deleteFinishedBefore = defineStatement({ locks: 'none', wakes: false }, ({ db, p }: StatementTools<{ cutoff: number; limit: number }>) =>
  db
    .deleteFrom('promises')
    .where('id', 'in', db.selectFrom('promises').select('id').where('completed_at', '<=', p('cutoff')).where('status', 'in', finished).limit(p('limit'))),
);
