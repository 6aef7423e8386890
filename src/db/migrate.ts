import { setTimeout as sleep } from 'node:timers/promises';
import { Kysely, Migrator, PostgresDialect, sql, type MigrationResultSet } from 'kysely';
import pg from 'pg';
import { migrations } from './migrations';
import { SERVICE_ROLE } from './migrations/2026_11_23_0001_tenants_tokens_ledger';

/** Kysely's record of the migrations it ran. */
const MIGRATION_TABLE = 'kysely_migration';

export class MigrationError extends Error {
  override readonly name = 'MigrationError';
}

/** Creates the database named in the URL when it does not exist yet (connecting to `postgres`). */
export async function ensureDatabaseExists(connectionString: string): Promise<void> {
  const target = new URL(connectionString);
  const name = decodeURIComponent(target.pathname.slice(1));
  const admin = new URL(connectionString);
  admin.pathname = '/postgres';
  const client = new pg.Client({ connectionString: admin.toString() });
  await client.connect();
  try {
    const found = await client.query('select 1 from pg_database where datname = $1', [name]);
    if (found.rowCount === 0) {
      await client.query(`create database ${client.escapeIdentifier(name)}`).catch((error: { code?: string }) => {
        if (error.code !== '42P04') throw error; // created concurrently
      });
    }
  } finally {
    await client.end();
  }
}

function migrator(connectionString: string): { migrator: Migrator; db: Kysely<unknown> } {
  const db = new Kysely<unknown>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString, max: 1 }) }) });
  return { db, migrator: new Migrator({ db, provider: { getMigrations: async () => migrations } }) };
}

function check(result: MigrationResultSet): void {
  if (result.error) {
    const failed = result.results?.find((r) => r.status === 'Error');
    throw new MigrationError(`migration ${failed?.migrationName ?? '?'} failed`, { cause: result.error });
  }
}

/** The names of the migrations the database has run; empty before the first. */
async function executedMigrations(db: Kysely<unknown>): Promise<string[]> {
  const table = await sql<{ found: string | null }>`select to_regclass(${MIGRATION_TABLE}) as found`.execute(db);
  if (!table.rows[0]?.found) return [];
  const rows = await sql<{ name: string }>`select name from ${sql.table(MIGRATION_TABLE)}`.execute(db);
  return rows.rows.map((row) => row.name);
}

export interface MigrateOutcome {
  /** Migrations of a newer image the database has run, which this image does not know (a rollback). */
  newerThanImage: string[];
}

/**
 * Brings the schema to the latest this image knows. A database a newer image has migrated (a
 * rollback to an older image) is left as it is when it has run every migration this image knows:
 * migrations only add, so the older code runs on it; Kysely would refuse it as "corrupted".
 * The service role may read the migration record, which `--wait` (waitForSchema) reads.
 */
export async function migrateToLatest(connectionString: string): Promise<MigrateOutcome> {
  await ensureDatabaseExists(connectionString);
  const { db, migrator: m } = migrator(connectionString);
  try {
    const executed = await executedMigrations(db);
    const newerThanImage = executed.filter((name) => !(name in migrations));
    const missing = Object.keys(migrations).filter((name) => !executed.includes(name));
    if (newerThanImage.length > 0 && missing.length === 0) return { newerThanImage };
    check(await m.migrateToLatest());
    const role = await sql`select 1 from pg_roles where rolname = ${SERVICE_ROLE}`.execute(db);
    if (role.rows.length > 0) await sql`grant select on ${sql.table(MIGRATION_TABLE)} to ${sql.id(SERVICE_ROLE)}`.execute(db);
    return { newerThanImage };
  } finally {
    await db.destroy();
  }
}

/**
 * Waits until the database has run every migration this image knows (the init container of the
 * API and worker pods, `migrate.js --wait`, with the service login): a new image's pods start only
 * once its migrations Job has finished. Unreachable, not yet migrated or no rights yet: it tries
 * again every `everyMs`, reporting at most every `reportEveryMs`.
 */
export async function waitForSchema(
  connectionString: string,
  options: { everyMs?: number; reportEveryMs?: number; report: (missing: string[], error?: unknown) => void },
): Promise<void> {
  const { everyMs = 2_000, reportEveryMs = 30_000 } = options;
  const db = new Kysely<unknown>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString, max: 1, connectionTimeoutMillis: 5_000 }) }) });
  let reportedAt = -Infinity;
  try {
    for (;;) {
      let missing: string[] = Object.keys(migrations);
      let failure: unknown;
      try {
        const executed = new Set(await executedMigrations(db));
        missing = missing.filter((name) => !executed.has(name));
        if (missing.length === 0) return;
      } catch (error) {
        failure = error;
      }
      if (Date.now() - reportedAt >= reportEveryMs) {
        reportedAt = Date.now();
        options.report(missing, failure);
      }
      await sleep(everyMs);
    }
  } finally {
    await db.destroy();
  }
}
