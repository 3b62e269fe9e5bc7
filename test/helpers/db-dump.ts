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
