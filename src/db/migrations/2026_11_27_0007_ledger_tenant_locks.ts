import { sql, type Kysely } from 'kysely';

/**
 * Appends of different tenants no longer wait for each other. Until now the chain trigger took one
 * lock for the whole ledger, because every entry's hash linked to the entry before it in global
 * order. From this migration on:
 *
 * - the trigger takes the lock of the entry's own chain (the tenant, or the platform chain for
 *   entries without one), keyed like the chain itself: (LEDGER_CHAIN_LOCK_CLASS, hashtext(tenant));
 * - `seq` comes from a sequence, drawn after that lock and after the transaction has its id, so
 *   within a chain seq order is chain order, and the commit horizon (src/ledger/commit-horizon.ts)
 *   can tell when every seq up to a number is committed or gone for good. Rolled-back appends leave
 *   gaps in seq; the chains themselves (tenant_seq) have none;
 * - an entry's `prev_hash` is the `hash` of the previous entry of its own chain, no longer of the
 *   previous entry overall. The hash formula is unchanged. Entries up to the one recorded in
 *   ledger_global_chain_end keep their links: they stay one global chain, verified as before.
 *
 * Nothing stored is changed. The checkpoints' Merkle tree of chain heads is what binds all chains.
 */

// The same values as LEDGER_CHAIN_LOCK_CLASS and the sequence name in src/ledger/ledger-append.ts;
// repeated because a migration must not import application code that may change later.
const CHAIN_LOCK_CLASS = 7_221_003;
const SERVICE_ROLE = 'vm_tenant_app';

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`lock table audit_events in exclusive mode`.execute(db);
  await sql`create table ledger_global_chain_end (seq bigint not null)`.execute(db);
  await sql`insert into ledger_global_chain_end (seq) select coalesce(max(seq), 0) from audit_events`.execute(db);
  await sql`create sequence audit_events_seq as bigint minvalue 1 owned by audit_events.seq`.execute(db);
  await sql`select setval('audit_events_seq', max(seq)) from audit_events having max(seq) > 0`.execute(db);
  // SELECT lets the service login read how far the sequence went (the commit horizon), not draw from it.
  await sql`grant select on ledger_global_chain_end, audit_events_seq to ${sql.id(SERVICE_ROLE)}`.execute(db);

  await sql`
    create or replace function audit_events_extend_chain() returns trigger
    language plpgsql security definer set search_path = pg_catalog, public as $$
    declare
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
      -- This entry's chain only: appends to other chains go on meanwhile.
      perform pg_advisory_xact_lock(${sql.lit(CHAIN_LOCK_CLASS)}, hashtext(coalesce(new.tenant_id, '')));
      -- The transaction gets its id before it draws a seq: the commit horizon relies on that order.
      perform pg_current_xact_id();
      want_seq := nextval('public.audit_events_seq');
      if new.seq is not null and new.seq <> want_seq then
        raise exception 'audit_events: seq % does not extend the chain (the next seq is %)', new.seq, want_seq
          using errcode = 'check_violation';
      end if;
      -- A statement after the lock: in READ COMMITTED it sees what the previous holder committed.
      select tenant_seq, tenant_hash, hash into tenant_head_seq, tenant_head_hash, head_hash from public.audit_events
       where coalesce(tenant_id, '') = coalesce(new.tenant_id, '') order by tenant_seq desc limit 1;
      want_prev := coalesce(head_hash, repeat('0', 64));
      if new.prev_hash is not null and new.prev_hash <> want_prev then
        raise exception 'audit_events: prev_hash is not the hash of the chain head (tenant_seq %)', coalesce(tenant_head_seq, 0)
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

export async function down(): Promise<void> {
  // Entries written since link to their own chain; the global-lock trigger could not extend them.
  throw new Error('2026_11_27_0007_ledger_tenant_locks cannot be reverted: entries since then link per chain');
}
