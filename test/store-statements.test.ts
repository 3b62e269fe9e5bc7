import { describe, expect, it } from 'vitest';
import { postgresSqlDialect } from '../src/persistence/postgres/postgres-sql-dialect.js';
import { sqliteSqlDialect } from '../src/persistence/sqlite/sqlite-sql-dialect.js';
import type { RowLock, Statement } from '../src/persistence/statement.js';
import { buildStatementTable, statementsOf } from '../src/persistence/statement-table.js';

// Every statement declares whether it takes row locks and whether its commit wakes other
// processes; the connections act on the declaration. These checks hold the declarations to the
// SQL itself, over the whole table, so a new statement cannot silently stop waking workers.

const tables = [
  { name: 'SQLite', statements: statementsOf(buildStatementTable(sqliteSqlDialect)) },
  { name: 'PostgreSQL', statements: statementsOf(buildStatementTable(postgresSqlDialect)) },
];
const postgres = tables[1]!.statements;

/** The lock clause a PostgreSQL statement's SQL carries, as a declaration would say it. */
function lockIn(sql: string): RowLock {
  const clause = / for (update|share)(?: of "[a-z_]+")?( skip locked)?/.exec(sql);
  if (!clause) return 'none';
  if (clause[1] === 'share') return 'share';
  return clause[2] ? 'update skip locked' : 'update';
}

// A promise row inserted, or its status written, may become claimable (a new pending row, a
// released child, a retry, a revived descendant, a failure or lost lease sent back to pending)
// or may finish one that another process waits for.
const writesPromiseState = (sql: string) => /^(with recursive .+\) )?(insert into "promises"|update "promises" set (?:(?! where ).)*"status" = )/.test(sql);
// A workflow, an event for one, or a durable timer: their runner may be another process.
const insertsWorkflowWork = (sql: string) => /^insert into "(workflows|workflow_events|workflow_timers)"/.test(sql);
/** Statements that write a promise's status without waking, and why. */
const QUIET_BY_DESIGN: Record<string, string> = {
  'claims.claimDue': 'a claim only takes rows out of the claimable set (pending → in_progress)',
  'flow.claimById': 'a flow-controlled claim, likewise only takes a row out of the claimable set',
  'flow.claimNextOfKey': 'a flow-controlled claim of one key, likewise',
  'flow.claimReadyKeys': 'a flow-controlled claim of one promise per ready key, likewise',
};

describe('statement table: row locks', () => {
  it('PostgreSQL statements take exactly the locks they declare', () => {
    for (const statement of postgres) expect(lockIn(statement.sql), statement.name).toBe(statement.traits.locks);
    expect(postgres.filter((s) => s.traits.locks !== 'none').map((s) => s.name).sort()).toEqual([
      'claims.claimDue',
      'claims.renewLeases',
      'deadlines.overdueUnstarted',
      'dependencies.parentStatesOf',
      'flow.claimNextOfKey',
      'flow.lockFlowKey',
      'flow.lockTypeCap',
      'flow.nextDue',
      'grouping.pendingDebounced',
      'promises.stateOf',
      'promises.statusOf',
      'relatives.lockWaitingChildren',
      'workflows.getWorkflowForUpdate',
    ]);
    expect(postgres.find((s) => s.name === 'claims.claimDue')!.sql).toContain('for update skip locked');
  });

  it('SQLite statements take none: one writer at a time needs no row locks', () => {
    for (const statement of tables[0]!.statements) expect(statement.sql, statement.name).not.toMatch(/ for (update|share)/);
  });
});

for (const { name, statements } of tables) {
  describe(`statement table: wake-ups (${name})`, () => {
    it('every statement that makes promises claimable or finishes them is declared waking', () => {
      const mustWake = statements.filter((s) => (writesPromiseState(s.sql) || insertsWorkflowWork(s.sql)) && !(s.name in QUIET_BY_DESIGN));
      for (const statement of mustWake) expect(statement.traits.wakes, `${statement.name}: ${statement.sql}`).toBe(true);
      // The rule above recognises what the brief of each waking statement says it does.
      expect(mustWake.map((s) => s.name)).toEqual(
        expect.arrayContaining([
          'promises.insertPromise',
          'promises.updateState',
          'relatives.releaseReadyChildren',
          'relatives.releaseAllReadyWaiting',
          'relatives.failWaitingDescendants',
          'relatives.reviveFailedDescendants',
          'workflows.insertWorkflow',
          'workflowEvents.insertWorkflowEvent',
          'workflowTimers.upsertWorkflowTimer',
        ]),
      );
    });

    it('a statement declared waking writes something; reads never wake', () => {
      for (const statement of statements.filter((s: Statement) => s.traits.wakes)) expect(statement.sql, statement.name).not.toMatch(/^select /);
    });

    it('every exemption names a statement that exists', () => {
      for (const exempt of Object.keys(QUIET_BY_DESIGN)) expect(statements.map((s) => s.name)).toContain(exempt);
    });
  });
}
