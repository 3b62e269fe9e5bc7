import { CompiledQuery, SqliteAdapter, SqliteDialect, type SqliteDriver, type DatabaseConnection, type DialectAdapter, type Driver } from 'kysely';

/**
 * Kysely's SQLite dialect with two corrections that matter once several processes share a file:
 * - transactions begin with `BEGIN IMMEDIATE`, taking the write lock up front; a deferred
 *   transaction that later upgrades to a writer fails with SQLITE_BUSY regardless of busy_timeout;
 * - migrations run inside a transaction (SQLite has transactional DDL; Kysely's adapter says
 *   otherwise), so a process killed mid-migration leaves the schema as it was.
 */
export class ImmediateSqliteDialect extends SqliteDialect {
  override createDriver(): Driver {
    const driver = super.createDriver() as SqliteDriver;
    driver.beginTransaction = async (connection: DatabaseConnection) => {
      await connection.executeQuery(CompiledQuery.raw('begin immediate'));
    };
    return driver;
  }

  override createAdapter(): DialectAdapter {
    return new TransactionalDdlSqliteAdapter();
  }
}

class TransactionalDdlSqliteAdapter extends SqliteAdapter {
  override get supportsTransactionalDdl(): boolean {
    return true;
  }
}
