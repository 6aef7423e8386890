import { sql, type Kysely } from 'kysely';

/** The login the API and worker use. It may append to and read the ledger, never change it. */
export const SERVICE_ROLE = 'vm_tenant_app';

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('tenants')
    .addColumn('tenant_id', 'text', (c) => c.primaryKey())
    .addColumn('display_name', 'text', (c) => c.notNull())
    .addColumn('max_vms', 'integer', (c) => c.notNull())
    .addColumn('storage_quota_gb', 'integer', (c) => c.notNull())
    .addColumn('api_rate_limit_rpm', 'integer', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('deleted_at', 'timestamptz')
    .addColumn('created_by_token_id', 'text')
    .execute();

  await db.schema
    .createTable('api_tokens')
    .addColumn('token_id', 'text', (c) => c.primaryKey())
    .addColumn('tenant_id', 'text', (c) => c.references('tenants.tenant_id'))
    .addColumn('scope', 'text', (c) => c.notNull())
    .addColumn('subject_pubkey', 'text')
    .addColumn('token_hash', 'text', (c) => c.notNull().unique())
    .addColumn('parent_token_id', 'text', (c) => c.references('api_tokens.token_id'))
    .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('expires_at', 'timestamptz')
    .addColumn('revoked_at', 'timestamptz')
    .execute();
  await db.schema.createIndex('api_tokens_tenant_idx').on('api_tokens').columns(['tenant_id', 'created_at']).execute();
  await db.schema.createIndex('api_tokens_parent_idx').on('api_tokens').column('parent_token_id').execute();

  await db.schema
    .createTable('audit_events')
    .addColumn('seq', 'bigint', (c) => c.primaryKey())
    .addColumn('event_id', 'uuid', (c) => c.notNull().unique())
    .addColumn('tenant_id', 'text')
    .addColumn('vm_id', 'text')
    .addColumn('event_type', 'text', (c) => c.notNull())
    .addColumn('occurred_at', 'timestamptz', (c) => c.notNull())
    .addColumn('actor_token_id', 'text')
    .addColumn('actor_scope', 'text')
    .addColumn('source_ip', 'text')
    .addColumn('user_agent', 'text')
    .addColumn('request_id', 'text')
    .addColumn('details', 'jsonb', (c) => c.notNull())
    .addColumn('prev_hash', 'text', (c) => c.notNull())
    .addColumn('hash', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('audit_events_tenant_idx').on('audit_events').columns(['tenant_id', 'seq']).execute();
  await db.schema.createIndex('audit_events_vm_idx').on('audit_events').columns(['vm_id', 'seq']).execute();

  // Write-once, read-many: no path touches an existing entry, whatever the caller's grants.
  await sql`
    create function audit_events_refuse_change() returns trigger language plpgsql as $$
    begin
      raise exception 'audit_events is append-only: % refused', tg_op using errcode = 'insufficient_privilege';
    end $$`.execute(db);
  await sql`create trigger audit_events_no_update_delete before update or delete on audit_events
            for each row execute function audit_events_refuse_change()`.execute(db);
  await sql`create trigger audit_events_no_truncate before truncate on audit_events
            for each statement execute function audit_events_refuse_change()`.execute(db);
  // Wakes the event relay as soon as an entry lands, so NATS delivery is not bound to a poll interval.
  await sql`
    create function audit_events_notify() returns trigger language plpgsql as $$
    begin
      perform pg_notify('audit_events', new.seq::text);
      return new;
    end $$`.execute(db);
  await sql`create trigger audit_events_notify after insert on audit_events
            for each row execute function audit_events_notify()`.execute(db);

  await db.schema
    .createTable('event_relay_cursor')
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('last_seq', 'bigint', (c) => c.notNull())
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();

  await grantServiceRole(db);
}

async function grantServiceRole(db: Kysely<unknown>): Promise<void> {
  // Roles are cluster-wide; another database of the same cluster may have created it already.
  await sql`
    do $$ begin
      if not exists (select from pg_roles where rolname = ${sql.lit(SERVICE_ROLE)}) then
        create role ${sql.id(SERVICE_ROLE)} login;
      end if;
    exception when duplicate_object or unique_violation then null; -- created concurrently
    end $$`.execute(db);
  await sql`grant usage on schema public to ${sql.id(SERVICE_ROLE)}`.execute(db);
  await sql`grant select, insert, update, delete on tenants, api_tokens, event_relay_cursor to ${sql.id(SERVICE_ROLE)}`.execute(db);
  await sql`grant select, insert on audit_events to ${sql.id(SERVICE_ROLE)}`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('event_relay_cursor').execute();
  await db.schema.dropTable('audit_events').execute();
  await sql`drop function audit_events_notify()`.execute(db);
  await sql`drop function audit_events_refuse_change()`.execute(db);
  await db.schema.dropTable('api_tokens').execute();
  await db.schema.dropTable('tenants').execute();
}
