import { sql } from 'kysely';
import { defineStatement, type StatementTools } from '../statement.js';

// What flow control holds back, for reports (the dashboard): reads only.

/**
 * Each (type, key) of a concurrency limit with work pending or running, the most pending first.
 * `flow_key is not null` is stated so the partial index promises_flow_key serves it.
 */
export const keysWithWork = defineStatement({ locks: 'none', wakes: false }, ({ db, p }: StatementTools<{ limit: number }>) =>
  db
    .selectFrom('promises')
    .select([
      'type',
      'flow_key as key',
      sql<number>`sum(case when status = 'in_progress' then 1 else 0 end)`.as('running'),
      sql<number>`sum(case when status = 'pending' then 1 else 0 end)`.as('pending'),
    ])
    .where('flow_key', 'is not', null)
    .where('status', 'in', [sql.lit('pending'), sql.lit('in_progress')])
    .groupBy(['flow_key', 'type'])
    .orderBy('pending', 'desc')
    .orderBy('type')
    .limit(p('limit')),
);
