import { sql, type Kysely } from 'kysely';
import { createExtendChainFunction } from './2026_11_27_0005_ledger_chain_in_database';

/**
 * Per-tenant hash chains beside the global one, so that a tenant can check its own entries
 * without seeing anyone else's. Every entry also gets `tenant_seq` (1, 2, 3, … within its tenant;
 * entries with no tenant form the platform chain), `tenant_prev_hash` and `tenant_hash`:
 *
 *   tenant_hash = hex(SHA-256(tenant_prev_hash + "\n" + JCS(entry with tenant_seq, no global seq)))
 *
 * The tenant hash leaves out the source address and user agent of the platform operator's actions
 * (a tenant is not shown them, so could not recompute a hash over them); the global hash still
 * covers them. The chain trigger computes both, under the same lock.
 *
 * Existing entries are carried over by recomputation: this migration walks them in seq order and
 * assigns each its tenant chain fields, so every entry, old or new, is in its tenant's chain.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('audit_events').addColumn('tenant_seq', 'bigint').addColumn('tenant_prev_hash', 'text').addColumn('tenant_hash', 'text').execute();

  // The canonical JSON (RFC 8785, keys in order) of what the tenant hash covers. details_jcs is
  // ledger_jcs(e.details), passed in so that the trigger renders details once for both hashes.
  await sql`
    create function ledger_tenant_entry_hash(prev text, e audit_events, tenant_seq bigint, details_jcs text) returns text
    language sql stable parallel safe set search_path = pg_catalog, public as $$
      select encode(sha256(convert_to(prev || E'\\n' || '{"actor_scope":' || coalesce(to_json(e.actor_scope)::text, 'null')
        || ',"actor_token_id":' || coalesce(to_json(e.actor_token_id)::text, 'null')
        || ',"details":' || details_jcs
        || ',"event_id":' || to_json(e.event_id::text)::text
        || ',"event_type":' || to_json(e.event_type)::text
        || ',"occurred_at":' || to_json(to_char(e.occurred_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))::text
        || ',"request_id":' || coalesce(to_json(e.request_id)::text, 'null')
        || ',"source_ip":' || case when e.actor_scope = 'service:admin' then 'null' else coalesce(to_json(e.source_ip)::text, 'null') end
        || ',"tenant_id":' || coalesce(to_json(e.tenant_id)::text, 'null')
        || ',"tenant_seq":' || to_json(tenant_seq::text)::text
        || ',"user_agent":' || case when e.actor_scope = 'service:admin' then 'null' else coalesce(to_json(e.user_agent)::text, 'null') end
        || ',"vm_id":' || coalesce(to_json(e.vm_id)::text, 'null')
        || '}', 'UTF8')), 'hex')
    $$`.execute(db);

  // Carry the existing entries over: their tenant chains, recomputed in seq order.
  await sql`alter table audit_events disable trigger audit_events_no_update_delete`.execute(db);
  await sql`
    do $$
    declare
      r audit_events;
      chain_seq bigint;
      chain_prev text;
      heads jsonb := '{}';
      chain_key text;
    begin
      for r in select * from audit_events order by seq loop
        chain_key := coalesce(r.tenant_id, '');
        chain_seq := coalesce((heads -> chain_key ->> 'seq')::bigint, 0) + 1;
        chain_prev := coalesce(heads -> chain_key ->> 'hash', repeat('0', 64));
        update audit_events set tenant_seq = chain_seq, tenant_prev_hash = chain_prev,
               tenant_hash = ledger_tenant_entry_hash(chain_prev, r, chain_seq, ledger_jcs(r.details))
         where seq = r.seq
         returning tenant_hash into chain_prev;
        heads := heads || jsonb_build_object(chain_key, jsonb_build_object('seq', chain_seq, 'hash', chain_prev));
      end loop;
    end $$`.execute(db);
  await sql`alter table audit_events enable trigger audit_events_no_update_delete`.execute(db);
  await sql`alter table audit_events alter column tenant_seq set not null, alter column tenant_prev_hash set not null, alter column tenant_hash set not null`.execute(
    db,
  );
  await sql`create unique index audit_events_tenant_chain_idx on audit_events ((coalesce(tenant_id, '')), tenant_seq)`.execute(db);

  await sql`
    create or replace function audit_events_extend_chain() returns trigger
    language plpgsql security definer set search_path = pg_catalog, public as $$
    declare
      head_seq bigint;
      head_hash text;
      want_seq bigint;
      want_prev text;
      want_hash text;
      tenant_head_seq bigint;
      tenant_head_hash text;
      want_tenant_seq bigint;
      want_tenant_prev text;
      want_tenant_hash text;
      details_jcs text;
      canonical text;
    begin
      perform pg_advisory_xact_lock(7221001);
      -- A statement after the lock: in READ COMMITTED it sees what the previous holder committed.
      select seq, hash into head_seq, head_hash from public.audit_events order by seq desc limit 1;
      want_seq := coalesce(head_seq, 0) + 1;
      want_prev := coalesce(head_hash, repeat('0', 64));
      if new.seq is not null and new.seq <> want_seq then
        raise exception 'audit_events: seq % does not extend the chain (the next seq is %)', new.seq, want_seq
          using errcode = 'check_violation';
      end if;
      if new.prev_hash is not null and new.prev_hash <> want_prev then
        raise exception 'audit_events: prev_hash is not the hash of the chain head (seq %)', coalesce(head_seq, 0)
          using errcode = 'check_violation';
      end if;
      new.occurred_at := date_trunc('milliseconds', new.occurred_at);
      if extract(year from new.occurred_at at time zone 'UTC') not between 1 and 9999 then
        raise exception 'audit_events: occurred_at % is outside years 1-9999', new.occurred_at using errcode = 'check_violation';
      end if;
      if jsonb_typeof(new.details) is distinct from 'object' then
        raise exception 'audit_events: details must be a JSON object' using errcode = 'check_violation';
      end if;
      details_jcs := ledger_jcs(new.details);
      canonical := '{"actor_scope":' || coalesce(to_json(new.actor_scope)::text, 'null')
        || ',"actor_token_id":' || coalesce(to_json(new.actor_token_id)::text, 'null')
        || ',"details":' || details_jcs
        || ',"event_id":' || to_json(new.event_id::text)::text
        || ',"event_type":' || to_json(new.event_type)::text
        || ',"occurred_at":' || to_json(to_char(new.occurred_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))::text
        || ',"request_id":' || coalesce(to_json(new.request_id)::text, 'null')
        || ',"seq":' || to_json(want_seq::text)::text
        || ',"source_ip":' || coalesce(to_json(new.source_ip)::text, 'null')
        || ',"tenant_id":' || coalesce(to_json(new.tenant_id)::text, 'null')
        || ',"user_agent":' || coalesce(to_json(new.user_agent)::text, 'null')
        || ',"vm_id":' || coalesce(to_json(new.vm_id)::text, 'null')
        || '}';
      want_hash := encode(sha256(convert_to(want_prev || E'\\n' || canonical, 'UTF8')), 'hex');
      if new.hash is not null and new.hash <> want_hash then
        raise exception 'audit_events: hash does not match the entry content' using errcode = 'check_violation';
      end if;

      -- The entry's tenant chain (entries without a tenant: the platform chain).
      select tenant_seq, tenant_hash into tenant_head_seq, tenant_head_hash from public.audit_events
       where coalesce(tenant_id, '') = coalesce(new.tenant_id, '') order by tenant_seq desc limit 1;
      want_tenant_seq := coalesce(tenant_head_seq, 0) + 1;
      want_tenant_prev := coalesce(tenant_head_hash, repeat('0', 64));
      if new.tenant_seq is not null and new.tenant_seq <> want_tenant_seq then
        raise exception 'audit_events: tenant_seq % does not extend the tenant chain (the next is %)', new.tenant_seq, want_tenant_seq
          using errcode = 'check_violation';
      end if;
      if new.tenant_prev_hash is not null and new.tenant_prev_hash <> want_tenant_prev then
        raise exception 'audit_events: tenant_prev_hash is not the hash of the tenant chain head' using errcode = 'check_violation';
      end if;
      want_tenant_hash := ledger_tenant_entry_hash(want_tenant_prev, new, want_tenant_seq, details_jcs);
      if new.tenant_hash is not null and new.tenant_hash <> want_tenant_hash then
        raise exception 'audit_events: tenant_hash does not match the entry content' using errcode = 'check_violation';
      end if;

      new.seq := want_seq;
      new.prev_hash := want_prev;
      new.hash := want_hash;
      new.tenant_seq := want_tenant_seq;
      new.tenant_prev_hash := want_tenant_prev;
      new.tenant_hash := want_tenant_hash;
      return new;
    end $$`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await createExtendChainFunction(db); // the global chain only
  await sql`drop index audit_events_tenant_chain_idx`.execute(db);
  await sql`drop function ledger_tenant_entry_hash(text, audit_events, bigint, text)`.execute(db);
  await db.schema.alterTable('audit_events').dropColumn('tenant_seq').dropColumn('tenant_prev_hash').dropColumn('tenant_hash').execute();
}
