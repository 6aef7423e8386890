import { Kysely, Migrator, PostgresDialect } from 'kysely';
import pg from 'pg';
import { loadConfig } from '../../src/config/config';
import { createDatabase } from '../../src/db/database';
import { migrations } from '../../src/db/migrations';
import type { Database } from '../../src/db/tables';
import { createScratchDatabase, withDatabase, type ScratchDatabase } from '../../src/devstack/postgres-admin';

/** An unmigrated scratch database for one migration test file, migrated step by step by the test. */
export interface MigrationDatabase {
  /** Moves the schema to a named migration (`migrateTo`) or the latest one (`migrateToLatest`). */
  readonly migrator: Migrator;
  /** The owner (superuser) connection: what the migrations run as; tampering. */
  readonly owner: Kysely<unknown>;
  /** The service login (vm_tenant_app), as the API and worker connect. */
  readonly service: Kysely<Database>;
}

/**
 * Creates the database before the file's tests (named vm_tenant_test_<label>_…, which global-setup's
 * sweep recognises) and drops it after them. The object returned is filled in once it is created.
 */
export function useMigrationDatabase(label: string): MigrationDatabase {
  const config = loadConfig();
  const ready = {} as { -readonly [K in keyof MigrationDatabase]: MigrationDatabase[K] };
  let database: ScratchDatabase | null = null;
  beforeAll(async () => {
    database = await createScratchDatabase(config.migrationDatabaseUrl, `vm_tenant_test_${label}`, { migrate: false });
    // An idle connection ended by the server (a database dropped WITH (FORCE) elsewhere) must not
    // crash the test process: the pool without a listener would rethrow it (createPgPool does the same).
    const ownerPool = new pg.Pool({ connectionString: database.url, max: 1 });
    ownerPool.on('error', () => undefined);
    ready.owner = new Kysely<unknown>({ dialect: new PostgresDialect({ pool: ownerPool }) });
    ready.migrator = new Migrator({ db: ready.owner, provider: { getMigrations: async () => migrations } });
    ready.service = createDatabase(withDatabase(config.databaseUrl, database.name), { max: 4 });
  });
  afterAll(async () => {
    await ready.service?.destroy();
    await ready.owner?.destroy();
    await database?.drop();
  });
  return ready;
}
