import { compileStatement, type Statement, type StatementDefinition } from './statement.js';
import type { SqlDialect } from './sql-dialect.js';
import * as claims from './statements/claims.js';
import * as cleanup from './statements/cleanup.js';
import * as deadLetters from './statements/dead-letters.js';
import * as deadlines from './statements/deadlines.js';
import * as dependencies from './statements/dependencies.js';
import * as flow from './statements/flow.js';
import * as flowReports from './statements/flow-reports.js';
import * as grouping from './statements/grouping.js';
import * as history from './statements/history.js';
import * as promisePages from './statements/promise-pages.js';
import * as promises from './statements/promises.js';
import * as relatives from './statements/relatives.js';
import * as schedules from './statements/schedules.js';
import * as stats from './statements/stats.js';
import * as workflowAwaiting from './statements/workflow-awaiting.js';
import * as workflowEvents from './statements/workflow-events.js';
import * as workflowHistory from './statements/workflow-history.js';
import * as workflowTimers from './statements/workflow-timers.js';
import * as workflows from './statements/workflows.js';

/** Every statement the store runs, by the thing it changes or reads; each module exports statements only. */
const GROUPS = { promises, promisePages, dependencies, relatives, claims, flow, flowReports, grouping, deadlines, history, deadLetters, cleanup, schedules, workflows, workflowEvents, workflowTimers, workflowHistory, workflowAwaiting, stats };

type Compiled<Group> = { readonly [Name in keyof Group]: Group[Name] extends StatementDefinition<infer Args, infer Row> ? Statement<Args, Row> : never };

/** The statements compiled for one dialect. */
export type StatementTable = { readonly [Group in keyof typeof GROUPS]: Compiled<(typeof GROUPS)[Group]> };

/**
 * The statements of `dialect`, each compiled the first time it is used and kept: a short command
 * (`promised stats`, a git hook's `enqueue`) runs a handful of the store's statements, and
 * compiling all of them through Kysely at open was a fifth of its start-up.
 */
export function buildStatementTable(dialect: SqlDialect): StatementTable {
  const table: Record<string, Record<string, Statement>> = {};
  for (const [group, definitions] of Object.entries(GROUPS)) {
    const compiled: Record<string, Statement> = {};
    for (const [name, definition] of Object.entries(definitions as Record<string, StatementDefinition<object, unknown>>)) {
      Object.defineProperty(compiled, name, {
        enumerable: true,
        configurable: true,
        get() {
          const statement = compileStatement(`${group}.${name}`, definition, dialect);
          Object.defineProperty(compiled, name, { value: statement, enumerable: true });
          return statement;
        },
      });
    }
    table[group] = compiled;
  }
  return table as unknown as StatementTable;
}

/** Every statement of `table`, for checks that go over all of them. */
export function statementsOf(table: StatementTable): Statement[] {
  return Object.values(table).flatMap((group: Record<string, Statement>) => Object.values(group));
}
