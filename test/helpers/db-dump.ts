import fs from 'node:fs';
import BetterSqlite3 from 'better-sqlite3';

/** Every row of the promise tables (plus the file's absence), to prove a refused call changed nothing. */
export function dumpDb(file: string): unknown {
  if (!fs.existsSync(file)) return 'no file';
  const db = new BetterSqlite3(file, { readonly: true });
  try {
    const tables = db.prepare(`select name from sqlite_master where type = 'table' order by name`).pluck().all() as string[];
    return Object.fromEntries(tables.map((table) => [table, db.prepare(`select * from "${table}" order by rowid`).all()]));
  } finally {
    db.close();
  }
}

/**
 * {@link dumpDb} for either backend: a SQLite file path or a `postgres://` URL. On PostgreSQL,
 * every table of the public schema, each ordered by its first column.
 */
export async function dumpDatabase(database: string): Promise<unknown> {
  if (!/^postgres(ql)?:\/\//.test(database)) return dumpDb(database);
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: database });
  await client.connect();
  try {
    const { rows: tables } = await client.query<{ name: string }>(
      `select table_name as name from information_schema.tables where table_schema = 'public' order by table_name`,
    );
    const dump: Record<string, unknown[]> = {};
    for (const { name } of tables) dump[name] = (await client.query(`select * from "${name}" order by 1`)).rows;
    return dump;
  } finally {
    await client.end();
  }
}
