import { sql, type ExpressionBuilder } from 'kysely';
import type { Database } from '../schema.js';
import type { StatementTools } from '../statement.js';
import type { ClaimRequest } from '../store.js';

// What every claim statement writes and returns (the plain claim and the flow-controlled ones).
// Not a statement module: the statement table compiles only the statement modules.

/** What a claim hands the engine: enough to run the handler and to fence its outcome. */
export const CLAIMED_COLUMNS = ['id', 'type', 'payload', 'priority', 'run_at', 'attempts', 'max_attempts', 'lease_token', 'lease_losses', 'workflow_id', 'invoke_id', 'trace_context'] as const;

/** The state a claim writes: in_progress under a new lease, one more attempt, a new fencing token. */
export function claimedState(p: StatementTools<Pick<ClaimRequest, 'toStatus' | 'snapshot' | 'owner' | 'leaseExpiresAt' | 'now'>>['p']) {
  return (eb: ExpressionBuilder<Database, 'promises'>) => ({
    status: p('toStatus'),
    snapshot: p('snapshot'),
    attempts: eb('attempts', '+', 1),
    lease_token: eb('lease_token', '+', 1),
    lease_owner: p('owner'),
    lease_expires_at: p('leaseExpiresAt'),
    started_at: eb.fn.coalesce('started_at', sql<number>`${p('now')}`),
    // Started: no schedule-to-start deadline any more, and no later enqueue is debounced into it.
    start_by: null,
    debounce_key: null,
    updated_at: p('now'),
  });
}

