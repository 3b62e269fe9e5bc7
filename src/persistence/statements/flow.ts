import { sql, type ExpressionBuilder } from 'kysely';
import type { Database, FlowKeysTable } from '../schema.js';
import { defineStatement, type StatementTools } from '../statement.js';
import type { ClaimRequest } from '../store.js';
import { CLAIMED_COLUMNS, claimedState } from './claim-state.js';

// Flow control: paused types, the per-key rows claimers lock, running counts, the rate log.
// Every limit is decided by the claiming transaction from the rows themselves.


export const pausedTypes = defineStatement({ locks: 'none', wakes: false }, ({ db }: StatementTools<Record<string, never>>) =>
  db.selectFrom('paused_types').select(['type', 'paused_at']).orderBy('type'),
);

/** Pausing needs to wake nobody: every claim statement asks for paused types itself. */
export const pauseType = defineStatement({ locks: 'none', wakes: false }, ({ db, p }: StatementTools<{ type: string; now: number }>) =>
  db.insertInto('paused_types').values({ type: p('type'), paused_at: p('now') }).onConflict((oc) => oc.column('type').doNothing()),
);

/** Resuming wakes: the type's pending promises are claimable again, in every process. */
export const resumeType = defineStatement({ locks: 'none', wakes: true }, ({ db, p }: StatementTools<{ type: string }>) =>
  db.deleteFrom('paused_types').where('type', '=', p('type')),
);

export const ensureFlowKey = defineStatement({ locks: 'none', wakes: false }, ({ db, p }: StatementTools<{ type: string; key: string }>) =>
  db.insertInto('flow_keys').values({ type: p('type'), key: p('key') }).onConflict((oc) => oc.columns(['type', 'key']).doNothing()),
);

/** A key's row, locked for this claim; a key another claimer holds is skipped, not waited for. */
export const lockFlowKey = defineStatement({ locks: 'update skip locked', wakes: false }, ({ db, p, lock }: StatementTools<{ type: string; key: string }>) =>
  lock(db.selectFrom('flow_keys').select('key').where('type', '=', p('type')).where('key', '=', p('key'))),
);

/** A type's cap row, waited for: two claimers of a capped type take turns. */
export const lockTypeCap = defineStatement({ locks: 'update', wakes: false }, ({ db, p, lock }: StatementTools<{ type: string; key: string }>) =>
  lock(db.selectFrom('flow_keys').select('key').where('type', '=', p('type')).where('key', '=', p('key'))),
);

/** The arguments a ready-keys query binds. */
type ReadyKeysArgs = { type: string; dueBy: number; keyLimit: number; limit: number };

/** The running count of the key of row `f`, as a subquery. */
function runningOfKey(eb: ExpressionBuilder<Database & { f: FlowKeysTable }, 'f'>, p: StatementTools<ReadyKeysArgs>['p']) {
  return eb
    .selectFrom('promises as r')
    .select((inner) => inner.fn.countAll<number>().as('n'))
    .where('r.type', '=', p('type'))
    .where('r.status', '=', sql.lit('in_progress'))
    .whereRef('r.flow_key', '=', 'f.key');
}

/**
 * The keys of `type` with a due pending promise and fewer than `keyLimit` running, the least
 * recently served first (round-robin across keys), at most `limit`: a walk of the type's keys in
 * that order that stops at `limit` ready ones (a key's row is written with its first promise).
 */
function readyKeys({ db, p }: StatementTools<ReadyKeysArgs>) {
  return db
    .selectFrom('flow_keys as f')
    .where('f.type', '=', p('type'))
    .where('f.type', 'not in', db.selectFrom('paused_types').select('type'))
    .where((eb) =>
      eb.exists(
        eb
          .selectFrom('promises as d')
          .select(sql.lit(1).as('one'))
          .where('d.type', '=', p('type'))
          .where('d.status', '=', sql.lit('pending'))
          .whereRef('d.flow_key', '=', 'f.key')
          .where('d.run_at', '<=', p('dueBy')),
      ),
    )
    .where((eb) => runningOfKey(eb, p), '<', p('keyLimit'))
    .orderBy('f.last_started_at')
    .limit(p('limit'));
}

/** The ready keys (see {@link readyKeys}) and how many of each run. */
export const readyFlowKeys = defineStatement({ locks: 'none', wakes: false }, (tools: StatementTools<ReadyKeysArgs>) =>
  readyKeys(tools).select((eb) => ['f.key', runningOfKey(eb, tools.p).as('running')]),
);

export const countRunning = defineStatement({ locks: 'none', wakes: false }, ({ db, p }: StatementTools<{ type: string }>) =>
  db
    .selectFrom('promises')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('type', '=', p('type'))
    .where('status', '=', sql.lit('in_progress')),
);

export const countRunningOfKey = defineStatement({ locks: 'none', wakes: false }, ({ db, p }: StatementTools<{ type: string; key: string }>) =>
  db
    .selectFrom('promises')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('type', '=', p('type'))
    .where('status', '=', sql.lit('in_progress'))
    .where('flow_key', '=', p('key')),
);

/** The next due promises of `type` (of one key, when given), in claim order; rows another claimer holds are skipped. */
export const nextDue = defineStatement(
  { locks: 'update skip locked', wakes: false },
  ({ db, p, lock }: StatementTools<{ type: string; key: string | null; dueBy: number; limit: number }>) =>
    lock(
      db
        .selectFrom('promises')
        .select(['id', 'rate_key'])
        .where('type', '=', p('type'))
        .where('status', '=', sql.lit('pending'))
        .where('run_at', '<=', p('dueBy'))
        .where((eb) => eb.or([eb(sql`${p('key')}`, 'is', null), eb('flow_key', '=', p('key'))]))
        .where('type', 'not in', db.selectFrom('paused_types').select('type'))
        .orderBy('priority', 'desc')
        .orderBy('run_at')
        .orderBy('id')
        .limit(p('limit')),
    ),
);

/** Claims up to `limit` due promises of one key, in claim order (a type with no rate limit: nothing to judge per row). */
export const claimNextOfKey = defineStatement(
  { locks: 'update skip locked', wakes: false },
  ({ db, p, lock }: StatementTools<Omit<ClaimRequest, 'types'> & { type: string; key: string }>) => {
    const next = db
      .selectFrom('promises')
      .select('id')
      .where('type', '=', p('type'))
      .where('status', '=', sql.lit('pending'))
      .where('flow_key', '=', p('key'))
      .where('run_at', '<=', p('dueBy'))
      .orderBy('priority', 'desc')
      .orderBy('run_at')
      .orderBy('id')
      .limit(p('limit'));
    return db
      .updateTable('promises')
      .set(claimedState(p))
      .where('id', 'in', lock(next))
      .returning([...CLAIMED_COLUMNS]);
  },
);

/**
 * Where one writer runs at a time (SQLite): claims the next due promise of each of up to `limit`
 * ready keys (fewer than `keyLimit` running), the least recently served first, in one statement.
 */
export const claimReadyKeys = defineStatement(
  { locks: 'none', wakes: false },
  (tools: StatementTools<Omit<ClaimRequest, 'types'> & { type: string; keyLimit: number }>) => {
    const { db, p } = tools;
    const keys = readyKeys(tools).select((eb) =>
      eb
        .selectFrom('promises as d')
        .select('d.id')
        .where('d.type', '=', p('type'))
        .where('d.status', '=', sql.lit('pending'))
        .whereRef('d.flow_key', '=', 'f.key')
        .where('d.run_at', '<=', p('dueBy'))
        .orderBy('d.priority', 'desc')
        .orderBy('d.run_at')
        .orderBy('d.id')
        .limit(1)
        .as('id'),
    );
    return db
      .updateTable('promises')
      .set(claimedState(p))
      .where('id', 'in', keys)
      .returning([...CLAIMED_COLUMNS, 'flow_key']);
  },
);

export const markKeysStarted = defineStatement({ locks: 'none', wakes: false }, ({ db, p, inList }: StatementTools<{ type: string; keys: readonly string[]; now: number }>) =>
  db.updateTable('flow_keys').set({ last_started_at: p('now') }).where('type', '=', p('type')).where(inList('key', p('keys'))),
);

/** Claims one pending promise chosen by the flow-control pass. */
export const claimById = defineStatement({ locks: 'none', wakes: false }, ({ db, p }: StatementTools<Omit<ClaimRequest, 'types' | 'limit' | 'dueBy'> & { id: number }>) =>
  db
    .updateTable('promises')
    .set(claimedState(p))
    .where('id', '=', p('id'))
    .where('status', '=', sql.lit('pending'))
    .returning([...CLAIMED_COLUMNS]),
);

export const markKeyStarted = defineStatement({ locks: 'none', wakes: false }, ({ db, p }: StatementTools<{ type: string; key: string; now: number }>) =>
  db.updateTable('flow_keys').set({ last_started_at: p('now') }).where('type', '=', p('type')).where('key', '=', p('key')),
);

/** Starts of one rate key since `since`: how many, and the oldest (when the next start is allowed). */
export const recentStarts = defineStatement({ locks: 'none', wakes: false }, ({ db, p }: StatementTools<{ type: string; key: string; since: number }>) =>
  db
    .selectFrom('rate_starts')
    .select((eb) => [eb.fn.countAll<number>().as('n'), eb.fn.min<number | null>('at').as('oldest')])
    .where('type', '=', p('type'))
    .where('key', '=', p('key'))
    .where('at', '>', p('since')),
);

export const recordStart = defineStatement({ locks: 'none', wakes: false }, ({ db, p }: StatementTools<{ type: string; key: string; at: number }>) =>
  db.insertInto('rate_starts').values({ type: p('type'), key: p('key'), at: p('at') }),
);

export const pruneStarts = defineStatement({ locks: 'none', wakes: false }, ({ db, p }: StatementTools<{ type: string; key: string; before: number }>) =>
  db.deleteFrom('rate_starts').where('type', '=', p('type')).where('key', '=', p('key')).where('at', '<=', p('before')),
);
