import { sql, type Kysely } from 'kysely';

/**
 * Every API process keeps tokens that authenticated in a cache (src/auth/active-token-cache.ts) and
 * LISTENs on api_tokens_changed to clear it (src/auth/token-revocation-watch.ts). These triggers
 * notify in the transaction that revokes: any update or delete of api_tokens (a revocation, however
 * made: the API, an operator's SQL, a bootstrap admin token's replacement) and a tenant's deletion.
 * Statement-level: one notification per statement, whatever the rows; Postgres sends it when the
 * transaction commits and never when it rolls back. Issuing a token (an insert) notifies nothing.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create function notify_api_tokens_changed() returns trigger language plpgsql as $$
    begin
      perform pg_notify('api_tokens_changed', '');
      return null;
    end $$`.execute(db);
  await sql`create trigger api_tokens_changed after update or delete or truncate on api_tokens for each statement execute function notify_api_tokens_changed()`.execute(
    db,
  );
  await sql`create trigger tenants_deleted after update of deleted_at or delete or truncate on tenants for each statement execute function notify_api_tokens_changed()`.execute(
    db,
  );
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop trigger tenants_deleted on tenants`.execute(db);
  await sql`drop trigger api_tokens_changed on api_tokens`.execute(db);
  await sql`drop function notify_api_tokens_changed()`.execute(db);
}
