import { sql } from 'kysely';
import { defineStatement, type StatementTools } from '../statement.js';

// Dead letters: a copy of each promise as it failed, so the record outlives the promise's cleanup.

export const insertDeadLetter = defineStatement(
  { locks: 'none', wakes: false },
  ({ db, p }: StatementTools<{ id: number; errorCode: string; errorMessage: string; failedAt: number }>) =>
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

export const deleteDeadLettersOf = defineStatement({ locks: 'none', wakes: false }, ({ db, p }: StatementTools<{ id: number }>) =>
  db.deleteFrom('dead_letters').where('promise_id', '=', p('id')),
);

export const clearDeadLetters = defineStatement({ locks: 'none', wakes: false }, ({ db }: StatementTools<Record<string, never>>) => db.deleteFrom('dead_letters'));

/** Dead letters, newest first. */
export const listDeadLetters = defineStatement({ locks: 'none', wakes: false }, ({ db, p }: StatementTools<{ limit: number }>) =>
  db.selectFrom('dead_letters').selectAll().orderBy('id', 'desc').limit(p('limit')),
);

export const countDeadLetters = defineStatement({ locks: 'none', wakes: false }, ({ db }: StatementTools<Record<string, never>>) =>
  db.selectFrom('dead_letters').select((eb) => eb.fn.countAll<number>().as('count')),
);
