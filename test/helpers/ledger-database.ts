import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import { adminQuery, withDatabase } from '../../src/devstack/postgres-admin';
import { loadConfig } from '../../src/config/config';
import { createDatabase } from '../../src/db/database';
import { migrateToLatest } from '../../src/db/migrate';
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

/**
 * `label` goes into the database name, which follows global-setup.ts's vm_tenant_test_<ms>_… form
 * so that databases left behind by a crashed run are dropped by a later run's stale-database sweep.
 */
export async function createLedgerTestDatabase(label = 'ledger'): Promise<LedgerTestDatabase> {
  if (!/^[a-z0-9_]{1,16}$/.test(label)) throw new Error(`label must be 1-16 of [a-z0-9_], got ${JSON.stringify(label)}`);
  const config = loadConfig();
  const name = `vm_tenant_test_${Date.now()}_${label}_${randomBytes(4).toString('hex')}`;
  const adminUrl = withDatabase(config.migrationDatabaseUrl, name);
  const serviceUrl = withDatabase(config.databaseUrl, name);
  try {
    await migrateToLatest(adminUrl);
  } catch {
    // The migration creates the cluster-wide service role when it is missing; two test workers
    // migrating at once on a fresh cluster can race on that. The failed migration rolled back.
    await migrateToLatest(adminUrl);
  }
  const pools: Kysely<Database>[] = [];
  const open = (url: string, max: number): Kysely<Database> => {
    const db = createDatabase(url, { max, applicationName: 'vm-tenant-test' });
    pools.push(db);
    return db;
  };
  return {
    name,
    adminUrl,
    serviceUrl,
    serviceDb: (options = {}) => open(serviceUrl, options.max ?? 10),
    adminDb: () => open(adminUrl, 2),
    async drop() {
      await Promise.all(pools.splice(0).map((db) => db.destroy()));
      // `name` is [a-z0-9_] only (checked above), so it needs no quoting beyond the double quotes.
      await adminQuery(withDatabase(config.migrationDatabaseUrl, 'postgres'), `drop database if exists "${name}" with (force)`);
    },
  };
}
