import { inject } from 'vitest';
import { createFreshDatabase } from './postgres.js';
import { tempDbPath } from './temp-db.js';

// The engine's test files run once per backend: the same behaviours through
// createEngine({ database }) on a SQLite file and on a real throwaway PostgreSQL server.
//
//   for (const backend of engineBackends) describe.skipIf(backend.skip)(`… on ${backend.name}`, () => { … await backend.fresh() … });
//
// A backend that cannot run here (no PostgreSQL binaries) is skipped with its printed reason.

export interface EngineBackend {
  name: 'SQLite' | 'PostgreSQL';
  /** Why this backend is skipped here, or `false`. */
  skip: string | false;
  /** A fresh, empty database: a file path or a `postgres://` URL, ready for `createEngine`. */
  fresh(): Promise<string>;
}

const adminUrl = inject('postgresAdminUrl');

export const engineBackends: EngineBackend[] = [
  { name: 'SQLite', skip: false, fresh: async () => tempDbPath() },
  {
    name: 'PostgreSQL',
    skip: adminUrl ? false : inject('postgresSkipReason'),
    fresh: () => createFreshDatabase(adminUrl!),
  },
];

for (const backend of engineBackends) {
  if (backend.skip) console.warn(`${backend.name} engine tests skipped: ${backend.skip}`);
}

/**
 * Runs one SQL statement straight on a test database, behind the engine's back (to corrupt a
 * row, say). Plain SQL that both dialects accept.
 */
export async function executeSql(database: string, statement: string): Promise<void> {
  if (database.startsWith('postgres://') || database.startsWith('postgresql://')) {
    const { default: pg } = await import('pg');
    const client = new pg.Client({ connectionString: database });
    await client.connect();
    try {
      await client.query(statement);
    } finally {
      await client.end();
    }
    return;
  }
  const { default: BetterSqlite3 } = await import('better-sqlite3');
  const raw = new BetterSqlite3(database);
  try {
    raw.exec(statement);
  } finally {
    raw.close();
  }
}
