import type { Kysely } from 'kysely';
import { createScratchDatabase, withDatabase } from '../../src/devstack/postgres-admin';
import { loadConfig } from '../../src/config/config';
import { createDatabase } from '../../src/db/database';
import type { Database } from '../../src/db/tables';

/**
 * A throwaway, fully migrated database for one test file (or one test). The server and users come
 * from loadConfig: MIGRATION_DATABASE_URL (a superuser, default postgres@127.0.0.1:5432) creates
 * and migrates it, DATABASE_URL's user (default vm_tenant_app) is the service role. Only the
 * database name is replaced, so this works with or without the suite's globalSetup.
 */
export interface LedgerTestDatabase {
  readonly name: string;
  /** Superuser connection string: migrations, tampering, dropping. */
  readonly adminUrl: string;
  /** Service-role connection string: what the API, worker and service-fs use. */
  readonly serviceUrl: string;
  /** A pool connected as the service role; closed by drop(). */
  serviceDb(options?: { max?: number }): Kysely<Database>;
  /** A pool connected as the superuser; closed by drop(). */
  adminDb(): Kysely<Database>;
  /** Closes every pool opened through this object and drops the database. */
  drop(): Promise<void>;
}

/** `label` goes into the database name (vm_tenant_test_<label>_<ms>_<hex>), which global-setup.ts's sweep recognises. */
export async function createLedgerTestDatabase(label = 'ledger'): Promise<LedgerTestDatabase> {
  const config = loadConfig();
  const database = await createScratchDatabase(config.migrationDatabaseUrl, `vm_tenant_test_${label}`);
  const serviceUrl = withDatabase(config.databaseUrl, database.name);
  const pools: Kysely<Database>[] = [];
  const open = (url: string, max: number): Kysely<Database> => {
    const db = createDatabase(url, { max, applicationName: 'vm-tenant-test' });
    pools.push(db);
    return db;
  };
  return {
    name: database.name,
    adminUrl: database.url,
    serviceUrl,
    serviceDb: (options = {}) => open(serviceUrl, options.max ?? 10),
    adminDb: () => open(database.url, 2),
    async drop() {
      await Promise.all(pools.splice(0).map((db) => db.destroy()));
      await database.drop();
    },
  };
}
