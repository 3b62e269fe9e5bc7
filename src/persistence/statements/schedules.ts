import { defineStatement, type StatementTools } from '../statement.js';

// Periodic schedules: one row each, holding the due time of the last run created.

export const upsertSchedule = defineStatement(
  { locks: 'none', wakes: false },
  ({ db, p }: StatementTools<{ name: string; cron: string; timezone: string | null; now: number }>) =>
    db
      .insertInto('schedules')
      .values({ name: p('name'), cron: p('cron'), timezone: p('timezone'), last_due_at: null, updated_at: p('now') })
      .onConflict((oc) => oc.column('name').doUpdateSet({ cron: p('cron'), timezone: p('timezone'), updated_at: p('now') })),
);

export const getSchedule = defineStatement({ locks: 'none', wakes: false }, ({ db, p }: StatementTools<{ name: string }>) =>
  db.selectFrom('schedules').selectAll().where('name', '=', p('name')),
);

// Compare-and-set: of several processes firing the same due time, exactly one advances it.
export const advanceSchedule = defineStatement({ locks: 'none', wakes: false }, ({ db, p }: StatementTools<{ name: string; dueAt: number; now: number }>) =>
  db
    .updateTable('schedules')
    .set({ last_due_at: p('dueAt'), updated_at: p('now') })
    .where('name', '=', p('name'))
    .where((eb) => eb.or([eb('last_due_at', 'is', null), eb('last_due_at', '<', p('dueAt'))])),
);

/** Every schedule any process registered, by name (the dashboard's schedules view). */
export const listSchedules = defineStatement({ locks: 'none', wakes: false }, ({ db }: StatementTools<Record<string, never>>) =>
  db.selectFrom('schedules').selectAll().orderBy('name'),
);
