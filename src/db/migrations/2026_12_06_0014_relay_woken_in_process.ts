import { sql, type Kysely } from 'kysely';

/**
 * An append notifies the event relay (migration 0001) unless its transaction says the relay is woken
 * in process: a worker whose own relay leads sets `vm_tenant.relay_woken_in_process` in its ledger
 * transactions and nudges that relay after the commit (src/ledger/ledger-writer.ts). Every
 * notification costs each listening session a transaction to read it, so the worker's own appends,
 * about half of a spawn's, no longer do.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create or replace function audit_events_notify() returns trigger language plpgsql as $$
    begin
      if current_setting('vm_tenant.relay_woken_in_process', true) is distinct from 'on' then
        perform pg_notify('audit_events', new.seq::text);
      end if;
      return new;
    end $$`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`
    create or replace function audit_events_notify() returns trigger language plpgsql as $$
    begin
      perform pg_notify('audit_events', new.seq::text);
      return new;
    end $$`.execute(db);
}
