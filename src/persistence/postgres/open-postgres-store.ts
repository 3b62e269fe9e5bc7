import { DatabaseError } from '../../errors.js';
import type { Store } from '../store.js';

export interface PostgresStoreOptions {
  connectionString: string;
}

/** Opens a promised PostgreSQL database. */
export async function openPostgresStore(options: PostgresStoreOptions): Promise<Store> {
  throw new DatabaseError('DATABASE_UNAVAILABLE', `PostgreSQL (${new URL(options.connectionString).host}) is not supported yet`);
}
