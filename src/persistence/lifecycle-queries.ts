import { sql, type Kysely } from 'kysely';
import { prepareQuery } from './prepared.js';
import type { Database } from './schema.js';
import type { QueryCapabilities } from './queries.js';
import type { HistoryEntry } from './store.js';

const FINISHED = ['completed', 'failed'];

/**
 * Statements for what happens around a promise's life: history lines, dead letters, expiry and
 * cleanup, periodic schedules, statistics. Built once, bound by name, like `buildQueries`.
 */
export function buildLifecycleQueries(db: Kysely<Database>, capabilities: QueryCapabilities) {
  const insertHistory = prepareQuery<HistoryEntry>((p) =>
    db.insertInto('promise_history').values({
      promise_id: p('promiseId'),
      event: p('event'),
      from_status: p('from'),
      to_status: p('to'),
      attempt: p('attempt'),
      error_code: p('errorCode'),
      error_message: p('errorMessage'),
      at: p('at'),
    }),
  );

  const historyOf = prepareQuery<{ id: number }>((p) =>
    db.selectFrom('promise_history').selectAll().where('promise_id', '=', p('id')).orderBy('id'),
  );

  // A copy of the promise as it failed, so the record outlives the promise's own cleanup.
  const insertDeadLetter = prepareQuery<{ id: number; errorCode: string; errorMessage: string; failedAt: number }>((p) =>
    db
      .insertInto('dead_letters')
      .columns(['promise_id', 'type', 'payload', 'error_code', 'error_message', 'attempts', 'created_at', 'failed_at'])
      .expression(
        db
          .selectFrom('promises')
          .select([
            'id',
            'type',
            'payload',
            sql<string>`${p('errorCode')}`.as('error_code'),
            sql<string>`${p('errorMessage')}`.as('error_message'),
            'attempts',
            'created_at',
            sql<number>`${p('failedAt')}`.as('failed_at'),
          ])
          .where('id', '=', p('id')),
      ),
  );

  const deleteDeadLettersOf = prepareQuery<{ id: number }>((p) => db.deleteFrom('dead_letters').where('promise_id', '=', p('id')));

  const listDeadLetters = prepareQuery<{ limit: number }>((p) => db.selectFrom('dead_letters').selectAll().orderBy('id', 'desc').limit(p('limit')));

  const clearDeadLetters = prepareQuery<Record<string, never>>(() => db.deleteFrom('dead_letters'));

  const countDeadLetters = prepareQuery<Record<string, never>>(() => db.selectFrom('dead_letters').select((eb) => eb.fn.countAll<number>().as('count')));

  const deleteExpired = prepareQuery<{ now: number; limit: number }>((p) =>
    db
      .deleteFrom('promises')
      .where(
        'id',
        'in',
        db.selectFrom('promises').select('id').where('expires_at', '<=', p('now')).where('status', 'in', FINISHED.map((status) => sql.lit(status))).limit(p('limit')),
      ),
  );

  const deleteFinishedBefore = prepareQuery<{ cutoff: number; limit: number }>((p) =>
    db
      .deleteFrom('promises')
      .where(
        'id',
        'in',
        db.selectFrom('promises').select('id').where('completed_at', '<=', p('cutoff')).where('status', 'in', FINISHED.map((status) => sql.lit(status))).limit(p('limit')),
      ),
  );

  const upsertSchedule = prepareQuery<{ name: string; cron: string; timezone: string | null; now: number }>((p) =>
    db
      .insertInto('schedules')
      .values({ name: p('name'), cron: p('cron'), timezone: p('timezone'), last_due_at: null, updated_at: p('now') })
      .onConflict((oc) => oc.column('name').doUpdateSet({ cron: p('cron'), timezone: p('timezone'), updated_at: p('now') })),
  );

  const getSchedule = prepareQuery<{ name: string }>((p) => db.selectFrom('schedules').selectAll().where('name', '=', p('name')));

  // Compare-and-set: of several processes firing the same due time, exactly one advances it.
  const advanceSchedule = prepareQuery<{ name: string; dueAt: number; now: number }>((p) =>
    db
      .updateTable('schedules')
      .set({ last_due_at: p('dueAt'), updated_at: p('now') })
      .where('name', '=', p('name'))
      .where((eb) => eb.or([eb('last_due_at', 'is', null), eb('last_due_at', '<', p('dueAt'))])),
  );

  const countByStatusAndType = prepareQuery<Record<string, never>>(() =>
    db.selectFrom('promises').select(['status', 'type', (eb) => eb.fn.countAll<number>().as('count')]).groupBy(['status', 'type']),
  );

  const oldestDueRunAt = prepareQuery<{ now: number }>((p) =>
    db.selectFrom('promises').select((eb) => eb.fn.min('run_at').as('at')).where('status', '=', sql.lit('pending')).where('run_at', '<=', p('now')),
  );

  const countFinishedSince = prepareQuery<{ since: number }>((p) =>
    db
      .selectFrom('promises')
      .select(['status', (eb) => eb.fn.countAll<number>().as('count')])
      .where('completed_at', '>', p('since'))
      .groupBy('status'),
  );

  const stalePending = prepareQuery<{ types: readonly string[]; cutoff: number }>((p) =>
    db
      .selectFrom('promises')
      .select(['id', 'type', 'attempts', 'max_attempts', 'lease_token', 'lease_owner', 'lease_losses', 'workflow_id', 'invoke_id'])
      .where('status', '=', sql.lit('pending'))
      .where('attempts', '=', 0)
      .where('run_at', '<', p('cutoff'))
      .where(capabilities.inBoundList('type', p('types'))),
  );

  return {
    insertHistory,
    historyOf,
    insertDeadLetter,
    deleteDeadLettersOf,
    listDeadLetters,
    clearDeadLetters,
    countDeadLetters,
    deleteExpired,
    deleteFinishedBefore,
    upsertSchedule,
    getSchedule,
    advanceSchedule,
    countByStatusAndType,
    oldestDueRunAt,
    countFinishedSince,
    stalePending,
  };
}

export type LifecycleQueries = ReturnType<typeof buildLifecycleQueries>;
