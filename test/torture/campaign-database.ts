// The database a campaign phase runs on, either backend, and the driver's own read connection
// to it: the checks read rows straight from the database (the truth), never through the engine.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import pg from 'pg';
import { createFreshDatabase } from '../helpers/postgres.js';

export type BackendName = 'SQLite' | 'PostgreSQL';

/** Where a phase runs: SQLite in a fresh temp folder, or a fresh database on a PostgreSQL server. */
export interface CampaignBackend {
  name: BackendName;
  /** The server's admin URL (PostgreSQL only). */
  adminUrl?: string;
}

export interface CampaignDatabase {
  backend: BackendName;
  /** What `createEngine({ database })` takes: a file path or a `postgres://` URL. */
  url: string;
  /** A folder for this phase's logs (and the SQLite file). */
  dir: string;
  /** Rows of one query; `?` placeholders on both backends; numbers come back as numbers. */
  rows<T>(statement: string, params?: unknown[]): Promise<T[]>;
  /** Runs statements behind the engine's back (a trigger, say). */
  exec(statements: string): Promise<void>;
  /** Closes the read connection; `keep` leaves the folder for inspection. */
  close(keep?: boolean): Promise<void>;
}

/** A fresh, empty database for one phase (the engine creates its tables on first open). */
export async function freshDatabase(backend: CampaignBackend, label: string): Promise<CampaignDatabase> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `promised-torture-${label}-`));
  const remove = (keep: boolean) => {
    if (!keep) fs.rmSync(dir, { recursive: true, force: true });
  };
  if (backend.name === 'SQLite') {
    const url = path.join(dir, 'campaign.db');
    let db: BetterSqlite3.Database | undefined;
    // Opened on first use: the file is created by the first engine, with its WAL mode.
    const open = () => (db ??= new BetterSqlite3(url));
    return {
      backend: 'SQLite',
      url,
      dir,
      async rows<T>(statement: string, params: unknown[] = []) {
        return open().prepare(statement).all(...params) as T[];
      },
      async exec(statements: string) {
        open().exec(statements);
      },
      async close(keep = false) {
        db?.close();
        remove(keep);
      },
    };
  }
  const url = await createFreshDatabase(backend.adminUrl!);
  // bigint columns (times) as numbers, for the checks' arithmetic; only on this connection.
  const client = new pg.Client({
    connectionString: url,
    types: { getTypeParser: ((oid: number, format?: 'text' | 'binary') => (oid === 20 ? Number : pg.types.getTypeParser(oid, format))) as typeof pg.types.getTypeParser },
  });
  await client.connect();
  return {
    backend: 'PostgreSQL',
    url,
    dir,
    async rows<T>(statement: string, params: unknown[] = []) {
      let n = 0;
      const result = await client.query(statement.replace(/\?/g, () => `$${++n}`), params);
      return result.rows as T[];
    },
    async exec(statements: string) {
      await client.query(statements);
    },
    async close(keep = false) {
      await client.end();
      remove(keep);
    },
  };
}

/**
 * A refusal of the database for one promise's completion, as a constraint or an encoding the
 * server rejects would be: completing a promise whose payload is marked `poison` is refused.
 */
export function refusePoisonTrigger(backend: BackendName): string {
  return backend === 'PostgreSQL'
    ? `create function refuse_poison() returns trigger language plpgsql as $$ begin raise exception 'value refused by the database'; end $$;
       create trigger refuse_poison before update on promises for each row when (new.status = 'completed' and new.payload like '%poison%') execute function refuse_poison();`
    : `create trigger refuse_poison before update on promises when new.status = 'completed' and new.payload like '%poison%' begin select raise(abort, 'value refused by the database'); end;`;
}
