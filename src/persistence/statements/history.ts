import { defineStatement, type StatementTools } from '../statement.js';
import type { HistoryEntry } from '../store.js';

// A promise's history: its exceptional transitions (the happy path is read from the row itself).

export const insertHistory = defineStatement({ locks: 'none', wakes: false }, ({ db, p }: StatementTools<HistoryEntry>) =>
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

export const historyOf = defineStatement({ locks: 'none', wakes: false }, ({ db, p }: StatementTools<{ id: number }>) =>
  db.selectFrom('promise_history').selectAll().where('promise_id', '=', p('id')).orderBy('id'),
);
