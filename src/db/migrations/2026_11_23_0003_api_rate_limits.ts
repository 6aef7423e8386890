import { sql, type Kysely } from 'kysely';
import { SERVICE_ROLE } from './2026_11_23_0001_tenants_tokens_ledger';

/** The shared counter store of rate-limiter-flexible's RateLimiterPostgres (its own table shape). */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('api_rate_limits')
    .addColumn('key', 'varchar(255)', (c) => c.primaryKey())
    .addColumn('points', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('expire', 'bigint')
    .execute();
  await sql`grant select, insert, update, delete on api_rate_limits to ${sql.id(SERVICE_ROLE)}`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('api_rate_limits').execute();
}
