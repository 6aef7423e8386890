import { sql, type Kysely } from 'kysely';

/**
 * The hash chain is enforced where it is stored. Before this, the application computed seq,
 * prev_hash and hash and the table took whatever it was given: the service login could insert an
 * entry with seq -5 and made-up hashes. Now a BEFORE INSERT trigger takes the chain lock, reads the
 * head, and assigns seq and prev_hash and computes the hash itself; a row that names other values
 * is refused. The hash is computed exactly as `entryHash` in src/ledger/ledger-hash.ts computes it
 * (SHA-256 over prev_hash, "\n" and the RFC 8785 canonical JSON of the entry), so the existing
 * entries carry over unchanged: their hashes recompute by the same formula and the chain continues
 * from the current head. Built-in sha256() (Postgres 11+) is used; no extension is needed.
 *
 * Existing entries are not touched: the trigger only fires on insert.
 */

// The same key as LEDGER_LOCK_KEY in src/ledger/ledger-append.ts; a migration must not import
// application code that may change later, so the value is repeated here.
const LEDGER_LOCK_KEY = 7_221_001;

export async function up(db: Kysely<unknown>): Promise<void> {
  // Object keys in RFC 8785 order: by UTF-16 code units. Code points above U+FFFF sort as their
  // surrogate pair (0xD800..0xDFFF), i.e. before U+E000..U+FFFF, unlike a byte or code-point sort.
  await sql`
    create function ledger_utf16_sort_key(value text) returns integer[]
    language sql immutable strict parallel safe set search_path = pg_catalog as $$
      select coalesce(array_agg(unit order by position, half), '{}')
      from (
        select position, 0 as half,
               case when code >= 65536 then 55296 + ((code - 65536) >> 10) else code end as unit
        from unnest(regexp_split_to_array(value, '')) with ordinality as chars(ch, position),
             lateral (select ascii(ch) as code) c
        union all
        select position, 1, 56320 + ((code - 65536) & 1023)
        from unnest(regexp_split_to_array(value, '')) with ordinality as chars(ch, position),
             lateral (select ascii(ch) as code) c
        where code >= 65536
      ) units
    $$`.execute(db);

  // A JSON number as ECMAScript's Number.prototype.toString renders the nearest double: float8's
  // text output (Postgres 12+) gives the shortest round-trip digits, which are re-laid out here by
  // the ES rules (plain up to 1e21, "0.000001" down to 1e-6, else "d.ddde+x").
  await sql`
    create function ledger_jcs_number(value numeric) returns text
    language plpgsql immutable strict parallel safe set search_path = pg_catalog set extra_float_digits = 1 as $$
    declare
      f double precision := value::double precision;
      parts text[];
      digits text;
      point integer;
      k integer;
      e integer;
      sign text := '';
    begin
      if f = 0 then return '0'; end if;
      if f < 0 then sign := '-'; f := -f; end if;
      parts := regexp_match(f::text, '^(\\d+)(?:\\.(\\d+))?(?:e([+-]\\d+))?$');
      if parts is null then raise exception 'ledger_jcs_number: unexpected float text %', f::text; end if;
      digits := parts[1] || coalesce(parts[2], '');
      point := length(parts[1]) + coalesce(parts[3]::integer, 0);
      while left(digits, 1) = '0' loop
        digits := substr(digits, 2);
        point := point - 1;
      end loop;
      digits := rtrim(digits, '0');
      k := length(digits);
      if k <= point and point <= 21 then return sign || digits || repeat('0', point - k); end if;
      if 0 < point and point <= 21 then return sign || left(digits, point) || '.' || substr(digits, point + 1); end if;
      if -6 < point and point <= 0 then return sign || '0.' || repeat('0', -point) || digits; end if;
      e := point - 1;
      return sign || left(digits, 1) || case when k > 1 then '.' || substr(digits, 2) else '' end
             || 'e' || case when e >= 0 then '+' else '-' end || abs(e)::text;
    end $$`.execute(db);

  // RFC 8785 canonical JSON of a jsonb value. Strings: to_json(text) escapes exactly as
  // JSON.stringify does (\b \f \n \r \t \" \\ and \u00xx for other controls, nothing else).
  await sql`
    create function ledger_jcs(value jsonb) returns text
    language plpgsql immutable strict parallel safe set search_path = pg_catalog, public as $$
    declare
      kind text := jsonb_typeof(value);
    begin
      if kind = 'object' then
        return '{' || coalesce((
          select string_agg(to_json(key)::text || ':' || ledger_jcs(member), ',' order by ledger_utf16_sort_key(key))
          from jsonb_each(value) as m(key, member)), '') || '}';
      elsif kind = 'array' then
        return '[' || coalesce((
          select string_agg(ledger_jcs(item), ',' order by position)
          from jsonb_array_elements(value) with ordinality as a(item, position)), '') || ']';
      elsif kind = 'number' then
        return ledger_jcs_number(value::numeric);
      else
        return value::text; -- string (already JSON-escaped by jsonb's output), true, false, null
      end if;
    end $$`.execute(db);

  await createExtendChainFunction(db);
  await sql`create trigger audit_events_extend_chain before insert on audit_events
            for each row execute function audit_events_extend_chain()`.execute(db);
}

/** The trigger function of this migration (also what 2026_11_27_0006's down restores). */
export async function createExtendChainFunction(db: Kysely<unknown>): Promise<void> {
  // Owned by the migration login and run with its rights (security definer), with a fixed
  // search_path so no caller can substitute the functions or the table it reads.
  await sql`
    create or replace function audit_events_extend_chain() returns trigger
    language plpgsql security definer set search_path = pg_catalog, public as $$
    declare
      head_seq bigint;
      head_hash text;
      want_seq bigint;
      want_prev text;
      want_hash text;
      canonical text;
    begin
      perform pg_advisory_xact_lock(${sql.lit(LEDGER_LOCK_KEY)});
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
      -- Members in RFC 8785 key order (all keys are ASCII, so this order is fixed).
      canonical := '{"actor_scope":' || coalesce(to_json(new.actor_scope)::text, 'null')
        || ',"actor_token_id":' || coalesce(to_json(new.actor_token_id)::text, 'null')
        || ',"details":' || ledger_jcs(new.details)
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
      new.seq := want_seq;
      new.prev_hash := want_prev;
      new.hash := want_hash;
      return new;
    end $$`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop trigger audit_events_extend_chain on audit_events`.execute(db);
  await sql`drop function audit_events_extend_chain()`.execute(db);
  await sql`drop function ledger_jcs(jsonb)`.execute(db);
  await sql`drop function ledger_jcs_number(numeric)`.execute(db);
  await sql`drop function ledger_utf16_sort_key(text)`.execute(db);
}
