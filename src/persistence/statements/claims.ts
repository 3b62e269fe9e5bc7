import { sql } from 'kysely';
import { CLAIMED_COLUMNS, claimedState } from './claim-state.js';
import { defineStatement, type StatementTools } from '../statement.js';
import type { ClaimRequest } from '../store.js';

// Claims and their leases: taking due work, renewing, finding what a dead process held.

const LEASE_COLUMNS = ['id', 'type', 'attempts', 'max_attempts', 'lease_token', 'lease_owner', 'lease_losses', 'workflow_id', 'invoke_id'] as const;

/**
 * Moves up to `limit` due pending rows to in_progress under a new lease. Claimers skip rows
 * another claimer has locked instead of waiting on them. It does not wake: it only takes rows
 * out of the claimable set.
 */
export const claimDue = defineStatement({ locks: 'update skip locked', wakes: false }, ({ db, p, lock, inList }: StatementTools<ClaimRequest>) => {
  const due = db
    .selectFrom('promises')
    .select('id')
    .where('status', '=', sql.lit('pending'))
    .where('run_at', '<=', p('dueBy'))
    .where(inList('type', p('types')))
    // A paused type is claimed by no process: the claim itself asks, so no process needs to hear of it.
    .where('type', 'not in', db.selectFrom('paused_types').select('type'))
    .orderBy('priority', 'desc')
    .orderBy('run_at')
    .orderBy('id')
    .limit(p('limit'));
  return db
    .updateTable('promises')
    .set(claimedState(p))
    .where('id', 'in', lock(due))
    .returning([...CLAIMED_COLUMNS]);
});

/**
 * Extends every lease `owner` holds. Where rows have locks (PostgreSQL) it takes them in id
 * order, the order an outcome batch settles its claims in: a renewal that locked rows in scan
 * order while this process's own batch locked them in arrival order deadlocked with it, and
 * renewals that waited for the server's deadlock check piled up until leases ran out.
 */
export const renewLeases = defineStatement({ locks: 'update', wakes: false }, ({ db, p, lock }: StatementTools<{ owner: string; leaseExpiresAt: number; now: number }>) =>
  db
    .updateTable('promises')
    .set({ lease_expires_at: p('leaseExpiresAt'), updated_at: p('now') })
    .where(
      'id',
      'in',
      lock(db.selectFrom('promises').select('id').where('status', '=', sql.lit('in_progress')).where('lease_owner', '=', p('owner')).orderBy('id')),
    )
    .returning(['id', 'lease_token']),
);

export const saveProgress = defineStatement(
  { locks: 'none', wakes: false },
  ({ db, p }: StatementTools<{ id: number; leaseToken: number; current: number; total: number; now: number }>) =>
    db
      .updateTable('promises')
      .set({ progress_current: p('current'), progress_total: p('total'), updated_at: p('now') })
      .where('id', '=', p('id'))
      .where('status', '=', sql.lit('in_progress'))
      .where('lease_token', '=', p('leaseToken')),
);

export const expiredLeases = defineStatement({ locks: 'none', wakes: false }, ({ db, p }: StatementTools<{ now: number; limit: number }>) =>
  db
    .selectFrom('promises')
    .select(LEASE_COLUMNS)
    .where('status', '=', sql.lit('in_progress'))
    .where('lease_expires_at', '<', p('now'))
    .orderBy('lease_expires_at')
    .limit(p('limit')),
);

export const leasesOwnedBy = defineStatement({ locks: 'none', wakes: false }, ({ db, p }: StatementTools<{ owner: string }>) =>
  db.selectFrom('promises').select(LEASE_COLUMNS).where('status', '=', sql.lit('in_progress')).where('lease_owner', '=', p('owner')),
);

/** Pending rows of `types` that never ran and fell due before `cutoff`. */
export const stalePending = defineStatement({ locks: 'none', wakes: false }, ({ db, p, inList }: StatementTools<{ types: readonly string[]; cutoff: number }>) =>
  db
    .selectFrom('promises')
    .select(LEASE_COLUMNS)
    .where('status', '=', sql.lit('pending'))
    .where('attempts', '=', 0)
    .where('run_at', '<', p('cutoff'))
    .where(inList('type', p('types'))),
);

/**
 * The earliest run-at after `after` of a pending promise of `types` that is not paused. Rows due
 * already but held back (a concurrency limit, a paused type) are not timed: the commit that
 * frees them (a completion, a resume) wakes the claimers.
 */
export const nextRunAt = defineStatement({ locks: 'none', wakes: false }, ({ db, p, inList }: StatementTools<{ types: readonly string[]; after: number }>) =>
  db
    .selectFrom('promises')
    .select((eb) => eb.fn.min('run_at').as('at'))
    .where('status', '=', sql.lit('pending'))
    .where('run_at', '>', p('after'))
    .where(inList('type', p('types')))
    .where('type', 'not in', db.selectFrom('paused_types').select('type')),
);

export const nextLeaseExpiry = defineStatement({ locks: 'none', wakes: false }, ({ db }: StatementTools<Record<string, never>>) =>
  db.selectFrom('promises').select((eb) => eb.fn.min('lease_expires_at').as('at')).where('status', '=', sql.lit('in_progress')),
);
