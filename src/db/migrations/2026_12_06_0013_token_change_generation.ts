import { sql, type Kysely } from 'kysely';
import { SERVICE_ROLE } from './2026_11_23_0001_tenants_tokens_ledger';

/**
 * A counter that every change able to revoke a token, or to change a cached token's tenant rate
 * limit, moves on, in the changing transaction (the triggers of migration 0011, which keep notifying
 * for API processes of earlier releases during a rollout). An API process's token watch reads it with each heartbeat instead of LISTENing: Postgres
 * signals every listening session of a database on every notification of any channel, and each
 * signalled session runs a transaction to read it, so a LISTEN in the ledger's database cost a
 * transaction on every ledger commit (the ledger notifies the event relay). A read of one row costs
 * nothing the heartbeat did not already cost.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`create table api_tokens_generation (
              singleton boolean primary key default true check (singleton),
              generation bigint not null default 0)`.execute(db);
  await sql`insert into api_tokens_generation (singleton, generation) values (true, 0)`.execute(db);
  // Runs with the rights of whoever changes api_tokens or tenants (the service login, an operator).
  await sql`grant select, update on api_tokens_generation to ${sql.id(SERVICE_ROLE)}`.execute(db);
  await sql`
    create or replace function notify_api_tokens_changed() returns trigger language plpgsql as $$
    begin
      update api_tokens_generation set generation = generation + 1;
      perform pg_notify('api_tokens_changed', '');
      return null;
    end $$`.execute(db);
  // A cached token carries its tenant's rate limit (findActiveTokenByHash): a change of it moves the
  // counter on too, so every API process applies it within a heartbeat, not a cache lifetime.
  await sql`drop trigger tenants_deleted on tenants`.execute(db);
  await sql`create trigger tenants_changed after update of deleted_at, api_rate_limit_rpm or delete or truncate on tenants for each statement execute function notify_api_tokens_changed()`.execute(
    db,
  );
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop trigger tenants_changed on tenants`.execute(db);
  await sql`create trigger tenants_deleted after update of deleted_at or delete or truncate on tenants for each statement execute function notify_api_tokens_changed()`.execute(
    db,
  );
  await sql`
    create or replace function notify_api_tokens_changed() returns trigger language plpgsql as $$
    begin
      perform pg_notify('api_tokens_changed', '');
      return null;
    end $$`.execute(db);
  await sql`drop table api_tokens_generation`.execute(db);
}
