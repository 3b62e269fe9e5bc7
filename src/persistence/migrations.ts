import { sql, type Kysely } from 'kysely';
import type { Migration } from 'kysely/migration';

/**
 * Numbered and append-only: never edit a migration that has shipped; add the next one.
 * Written with Kysely's schema builder so the same migrations build SQLite and PostgreSQL.
 */
export const migrations: Record<string, Migration> = {
  '0001_promises': {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('promises')
        .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('priority', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('payload', 'text', (c) => c.notNull())
        .addColumn('result', 'text')
        .addColumn('error_code', 'text')
        .addColumn('error_message', 'text')
        .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('max_attempts', 'integer', (c) => c.notNull())
        .addColumn('run_at', 'bigint', (c) => c.notNull())
        .addColumn('lease_owner', 'text')
        .addColumn('lease_expires_at', 'bigint')
        .addColumn('lease_token', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('progress_current', 'double precision')
        .addColumn('progress_total', 'double precision')
        .addColumn('snapshot', 'text', (c) => c.notNull())
        .addColumn('idempotency_key', 'text', (c) => c.unique())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .addColumn('started_at', 'bigint')
        .addColumn('completed_at', 'bigint')
        .execute();
      // The claim reads runnable rows in this exact order and stops at its LIMIT.
      await db.schema
        .createIndex('promises_ready')
        .on('promises')
        .columns(['priority desc', 'run_at', 'id'])
        .where(sql.ref('status'), '=', 'pending')
        .execute();
      // The one scheduler timer is armed for the earliest due run-at or lease expiry.
      await db.schema.createIndex('promises_due').on('promises').column('run_at').where(sql.ref('status'), '=', 'pending').execute();
      await db.schema
        .createIndex('promises_leased')
        .on('promises')
        .columns(['lease_expires_at'])
        .where(sql.ref('status'), '=', 'in_progress')
        .execute();
      await db.schema.createIndex('promises_status_type').on('promises').columns(['status', 'type']).execute();

      await db.schema
        .createTable('promise_dependencies')
        .addColumn('parent_id', 'integer', (c) => c.notNull().references('promises.id').onDelete('cascade'))
        .addColumn('child_id', 'integer', (c) => c.notNull().references('promises.id').onDelete('cascade'))
        .addPrimaryKeyConstraint('promise_dependencies_pk', ['parent_id', 'child_id'])
        .execute();
      await db.schema.createIndex('promise_dependencies_child').on('promise_dependencies').columns(['child_id', 'parent_id']).execute();
    },
  },
  '0002_lifecycle': {
    async up(db: Kysely<any>) {
      // Results expire: cleanup removes finished promises whose expires_at has passed.
      await db.schema.alterTable('promises').addColumn('expires_at', 'bigint').execute();
      await db.schema.createIndex('promises_expiry').on('promises').column('expires_at').where(sql.ref('expires_at'), 'is not', null).execute();
      await db.schema.createIndex('promises_finished').on('promises').column('completed_at').where(sql.ref('completed_at'), 'is not', null).execute();

      // The exceptional transitions (failures, retries, cancellations, recoveries). The happy
      // path's history is read from the row's own timestamps, so it costs no extra write.
      await db.schema
        .createTable('promise_history')
        .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
        .addColumn('promise_id', 'integer', (c) => c.notNull().references('promises.id').onDelete('cascade'))
        .addColumn('event', 'text', (c) => c.notNull())
        .addColumn('from_status', 'text', (c) => c.notNull())
        .addColumn('to_status', 'text', (c) => c.notNull())
        .addColumn('attempt', 'integer', (c) => c.notNull())
        .addColumn('error_code', 'text')
        .addColumn('error_message', 'text')
        .addColumn('at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('promise_history_promise').on('promise_history').columns(['promise_id', 'id']).execute();

      // A copy, not a pointer: a dead letter outlives the cleanup of its promise.
      await db.schema
        .createTable('dead_letters')
        .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
        .addColumn('promise_id', 'integer', (c) => c.notNull())
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('payload', 'text', (c) => c.notNull())
        .addColumn('error_code', 'text', (c) => c.notNull())
        .addColumn('error_message', 'text', (c) => c.notNull())
        .addColumn('attempts', 'integer', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('failed_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('dead_letters_promise').on('dead_letters').column('promise_id').execute();

      // One row per periodic schedule: the due time of the last run created, advanced by a
      // compare-and-set so that each due run is created once across processes.
      await db.schema
        .createTable('schedules')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('cron', 'text', (c) => c.notNull())
        .addColumn('timezone', 'text')
        .addColumn('last_due_at', 'bigint')
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .execute();
    },
  },
  '0003_workflows': {
    async up(db: Kysely<any>) {
      await db.schema
        .createTable('workflows')
        .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('input', 'text', (c) => c.notNull())
        .addColumn('snapshot', 'text', (c) => c.notNull())
        // A fingerprint of the machine definition the snapshot was written by.
        .addColumn('version', 'text', (c) => c.notNull())
        .addColumn('output', 'text')
        .addColumn('error_code', 'text')
        .addColumn('error_message', 'text')
        .addColumn('parent_step_id', 'integer')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .addColumn('completed_at', 'bigint')
        .execute();
      await db.schema.createIndex('workflows_status').on('workflows').columns(['status', 'id']).execute();

      // External events, stored before they are applied.
      await db.schema
        .createTable('workflow_events')
        .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
        .addColumn('workflow_id', 'integer', (c) => c.notNull().references('workflows.id').onDelete('cascade'))
        .addColumn('event', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('applied_at', 'bigint')
        .execute();
      await db.schema.createIndex('workflow_events_pending').on('workflow_events').columns(['workflow_id', 'id']).where(sql.ref('applied_at'), 'is', null).execute();

      // Delayed transitions (`after`): XState keeps them only in memory, so they are stored here.
      await db.schema
        .createTable('workflow_timers')
        .addColumn('workflow_id', 'integer', (c) => c.notNull().references('workflows.id').onDelete('cascade'))
        .addColumn('timer_id', 'text', (c) => c.notNull())
        .addColumn('event', 'text', (c) => c.notNull())
        .addColumn('fire_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('workflow_timers_pk', ['workflow_id', 'timer_id'])
        .execute();
      await db.schema.createIndex('workflow_timers_due').on('workflow_timers').column('fire_at').execute();

      // A step is a promise that belongs to a workflow invocation.
      await db.schema.alterTable('promises').addColumn('workflow_id', 'integer').execute();
      await db.schema.alterTable('promises').addColumn('invoke_id', 'text').execute();
      await db.schema.createIndex('promises_workflow').on('promises').columns(['workflow_id', 'id']).where(sql.ref('workflow_id'), 'is not', null).execute();
    },
  },
  '0004_drop_status_type_index': {
    async up(db: Kysely<any>) {
      // With no statistics, SQLite preferred this index over the claim order index (sorting every
      // pending row per claim) and over the dependency edges (reading every waiting row per
      // completion). Counting by status scans the table instead, which only stats and list pay.
      await db.schema.dropIndex('promises_status_type').execute();
    },
  },
  '0005_lease_losses': {
    async up(db: Kysely<any>) {
      // How many times this promise's worker died (or froze) while running it.
      await db.schema.alterTable('promises').addColumn('lease_losses', 'integer', (c) => c.notNull().defaultTo(0)).execute();
    },
  },
  '0006_flow_control': {
    async up(db: Kysely<any>) {
      // The key a promise's concurrency limit counts it under, and the key its rate limit does.
      await db.schema.alterTable('promises').addColumn('flow_key', 'text').execute();
      await db.schema.alterTable('promises').addColumn('rate_key', 'text').execute();
      // Running per key is counted from the rows themselves (nothing to drift after a crash).
      // Partial and led by the key: only flow-controlled rows pay for it, and a plain claim
      // (no key in its WHERE) cannot pick it over the claim-order index and sort every pending row.
      await db.schema
        .createIndex('promises_flow_key')
        .on('promises')
        .columns(['flow_key', 'type', 'status', 'run_at'])
        .where(sql.ref('flow_key'), 'is not', null)
        .execute();
      // One row per (type, key) a limit applies to: the lock a claimer takes on PostgreSQL, and
      // when the key last started a promise (fairness: the least recently served key goes first).
      await db.schema
        .createTable('flow_keys')
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('key', 'text', (c) => c.notNull())
        .addColumn('last_started_at', 'bigint', (c) => c.notNull().defaultTo(0))
        .addPrimaryKeyConstraint('flow_keys_pk', ['type', 'key'])
        .execute();
      // A claim pass walks a type's keys least recently served first and stops at the first few ready ones.
      await db.schema.createIndex('flow_keys_type_served').on('flow_keys').columns(['type', 'last_started_at']).execute();
      // A sliding log of starts per rate key: a start is allowed while fewer than `limit` lie in the last period.
      await db.schema
        .createTable('rate_starts')
        .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('key', 'text', (c) => c.notNull())
        .addColumn('at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('rate_starts_key_at').on('rate_starts').columns(['type', 'key', 'at']).execute();
      await db.schema
        .createTable('paused_types')
        .addColumn('type', 'text', (c) => c.primaryKey())
        .addColumn('paused_at', 'bigint', (c) => c.notNull())
        .execute();
    },
  },
  '0007_workflow_history': {
    async up(db: Kysely<any>) {
      // What steering a workflow needs. An idempotency key: a start repeated with it (a retried
      // request) returns the first workflow instead of starting a second. Unique where set.
      await db.schema.alterTable('workflows').addColumn('key', 'text').execute();
      await db.schema.createIndex('workflows_key').unique().on('workflows').column('key').execute();

      // Every event sent is stored with the outcome its sender was told: `accepted` (applied),
      // `kept` (held for a later state, until expires_at) or `dropped`. A kept event is applied
      // once (applied_at) or discarded (discarded_at, with why). A key makes repeated sends one event.
      await db.schema.alterTable('workflow_events').addColumn('type', 'text').execute();
      await db.schema.alterTable('workflow_events').addColumn('key', 'text').execute();
      await db.schema.alterTable('workflow_events').addColumn('outcome', 'text').execute();
      await db.schema.alterTable('workflow_events').addColumn('expires_at', 'bigint').execute();
      await db.schema.alterTable('workflow_events').addColumn('discarded_at', 'bigint').execute();
      await db.schema.alterTable('workflow_events').addColumn('discard_reason', 'text').execute();
      await db.updateTable('workflow_events').set({ outcome: 'accepted' }).where('applied_at', 'is not', null).execute();
      // Events kept before there was a rule were kept for ever (a double click approved the next
      // stage). They get the default 60 s from when they were sent: most have lapsed already.
      await db
        .updateTable('workflow_events')
        .set({ outcome: 'kept', expires_at: sql`created_at + 60000` })
        .where('applied_at', 'is', null)
        .execute();
      await db.schema.dropIndex('workflow_events_pending').execute();
      await db.schema
        .createIndex('workflow_events_kept')
        .on('workflow_events')
        .columns(['workflow_id', 'id'])
        .where(sql<boolean>`outcome = 'kept' and applied_at is null and discarded_at is null`)
        .execute();
      await db.schema.createIndex('workflow_events_key').unique().on('workflow_events').columns(['workflow_id', 'key']).execute();
      await db.schema.createIndex('workflow_events_type').on('workflow_events').columns(['workflow_id', 'type', 'applied_at']).execute();
      // When a durable timer was set: an event of a type accepted after that is a repeat (see the event rule).
      await db.schema.alterTable('workflow_timers').addColumn('created_at', 'bigint').execute();

      // A cancel that the machine compensates (it handles `promised.cancel`): when it was asked
      // for. The workflow runs on until a final state (or the compensation deadline), then fails
      // with CANCELLED.
      await db.schema.alterTable('workflows').addColumn('cancel_requested_at', 'bigint').execute();
      // A paused workflow: while set, its pending steps and timers are held (their due times
      // moved far ahead by a fixed offset, taken back off on resume).
      await db.schema.alterTable('workflows').addColumn('paused_at', 'bigint').execute();

      // Every transition of a workflow, with the snapshot after it and the timers then set (as
      // delays left), so a new workflow can start from any of them (restartWorkflow). Append-only;
      // `seq` counts a workflow's transitions from 1, and workflows.seq is the last one written.
      await db.schema
        .createTable('workflow_history')
        .addColumn('workflow_id', 'integer', (c) => c.notNull().references('workflows.id').onDelete('cascade'))
        .addColumn('seq', 'integer', (c) => c.notNull())
        .addColumn('event', 'text', (c) => c.notNull())
        .addColumn('from_value', 'text')
        .addColumn('to_value', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('snapshot', 'text', (c) => c.notNull())
        .addColumn('version', 'text', (c) => c.notNull())
        .addColumn('timers', 'text', (c) => c.notNull())
        .addColumn('at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('workflow_history_pk', ['workflow_id', 'seq'])
        .execute();
      await db.schema.alterTable('workflows').addColumn('seq', 'integer', (c) => c.notNull().defaultTo(0)).execute();
      // A workflow started from another's history: which, and after which transition.
      await db.schema.alterTable('workflows').addColumn('restarted_from', 'integer').execute();
      await db.schema.alterTable('workflows').addColumn('restarted_from_seq', 'integer').execute();

      // Which event types each running workflow's current state has a transition for, rewritten
      // in the transaction of each transition: listWorkflows({ awaiting }) reads this index
      // instead of every snapshot. `*` and `prefix.*` wildcards are stored as written.
      await db.schema
        .createTable('workflow_awaiting')
        .addColumn('event_type', 'text', (c) => c.notNull())
        .addColumn('workflow_id', 'integer', (c) => c.notNull().references('workflows.id').onDelete('cascade'))
        .addPrimaryKeyConstraint('workflow_awaiting_pk', ['event_type', 'workflow_id'])
        .execute();
      await db.schema.createIndex('workflow_awaiting_workflow').on('workflow_awaiting').column('workflow_id').execute();
    },
  },
  '0008_trace_context': {
    async up(db: Kysely<any>) {
      // The OpenTelemetry context a promise was enqueued in (the propagator's carrier as JSON:
      // W3C `traceparent` and `tracestate`), so whichever process runs it continues that trace.
      // Null when nothing was traced: that costs a row nothing.
      await db.schema.alterTable('promises').addColumn('trace_context', 'text').execute();
      // A workflow's own, taken when it started: its timers and events move it in that trace.
      await db.schema.alterTable('workflows').addColumn('trace_context', 'text').execute();
    },
  },
  '0009_debounce_batch_deadlines': {
    async up(db: Kysely<any>) {
      // A schedule-to-start deadline: `expire_in` is the task's allowance, kept in the row so a
      // promise released from `waiting` later gets its deadline from the time it became runnable;
      // `start_by` is that deadline while the promise is pending and has never started (a claim
      // clears it). Any engine running the type fails what passed it with EXPIRED.
      await db.schema.alterTable('promises').addColumn('expire_in', 'bigint').execute();
      await db.schema.alterTable('promises').addColumn('start_by', 'bigint').execute();
      await db.schema
        .createIndex('promises_start_by')
        .on('promises')
        .column('start_by')
        .where(sql<boolean>`status = 'pending' and start_by is not null`)
        .execute();
      // How long a promise's idempotency key is remembered after it settles (null: while the row lives).
      await db.schema.alterTable('promises').addColumn('key_ttl', 'bigint').execute();
      // The debounce key of a debounced promise: an enqueue of the same (type, key) while one is
      // pending and not started replaces its payload instead of adding a promise. A claim clears
      // it, so at most one pending promise holds a key: unique, and two enqueues racing on
      // PostgreSQL conflict here and the loser runs again and merges (a unique violation is retried).
      await db.schema.alterTable('promises').addColumn('debounce_key', 'text').execute();
      await db.schema
        .createIndex('promises_debounce')
        .unique()
        .on('promises')
        .columns(['type', 'debounce_key'])
        .where(sql<boolean>`status = 'pending' and debounce_key is not null`)
        .execute();
    },
  },
};

/** The names of the tables Kysely's migrator keeps; their presence marks a promised database. */
export const MIGRATION_TABLE = 'promised_migration';
export const MIGRATION_LOCK_TABLE = 'promised_migration_lock';
