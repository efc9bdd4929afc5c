/**
 * One pg Pool per process, wrapped by drizzle. `migrateDatabase` applies the committed drizzle-kit
 * migrations under an advisory lock, so several processes starting at once (worker, API, CLI,
 * test files) do not race each other.
 */
import path from 'node:path';
import { drizzle, type NodePgDatabase } from 'drizzle-orm/node-postgres';
import { migrate } from 'drizzle-orm/node-postgres/migrator';
import { Pool, type PoolConfig } from 'pg';
import * as schema from './schema';

export type Db = NodePgDatabase<typeof schema>;

export interface Database {
  db: Db;
  pool: Pool;
  close(): Promise<void>;
}

export function openDatabase(url: string, options: Omit<PoolConfig, 'connectionString'> = {}): Database {
  const pool = new Pool({ connectionString: url, max: 10, ...options });
  // A restarted or unreachable server surfaces as an 'error' on idle clients; without a listener
  // node would crash the process. The next query reconnects.
  pool.on('error', () => {});
  const db = drizzle(pool, { schema });
  return { db, pool, close: () => pool.end() };
}

export const MIGRATIONS_FOLDER = path.resolve(__dirname, '..', '..', 'drizzle');
const MIGRATION_LOCK_KEY = 0x1add3;

export async function migrateDatabase(database: Database): Promise<void> {
  const client = await database.pool.connect();
  try {
    await client.query('select pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    try {
      await migrate(drizzle(client, { schema }), { migrationsFolder: MIGRATIONS_FOLDER });
    } finally {
      await client.query('select pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]);
    }
  } finally {
    client.release();
  }
}
