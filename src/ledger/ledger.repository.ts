import { sql, type Kysely, type Transaction } from 'kysely';
import type { AuditEventType } from '../shared/audit-event-types';
import type { RequestContext } from '../shared/request-context';
import type { AuditEventRow, Database } from '../db/tables';
import { entryHash, GENESIS_HASH } from './ledger-hash';

export interface NewAuditEvent {
  event_id: string;
  event_type: AuditEventType;
  tenant_id: string | null;
  vm_id?: string | null;
  occurred_at?: Date;
  context: RequestContext;
  details?: Record<string, unknown>;
}

// One lock key for the whole ledger: appends form a single linear chain.
export const LEDGER_LOCK_KEY = 7_221_001;

/**
 * Appends one entry to the hash-chained ledger. Appends are serialised by a transaction-scoped
 * advisory lock, so concurrent writers never fork the chain. Appending an event id that is already
 * stored (a retried activity or request) returns the stored entry and writes nothing.
 */
export async function appendAuditEvent(db: Kysely<Database> | Transaction<Database>, event: NewAuditEvent): Promise<AuditEventRow> {
  const run = async (trx: Transaction<Database>): Promise<AuditEventRow> => {
    // Every append waits for this lock, held to commit: keep the work done under it to the minimum.
    // Entries are never changed once stored, so a repeat (a retried activity, the worker recording a
    // step the API already recorded) is answered before taking the lock at all.
    const stored = await trx.selectFrom('audit_events').selectAll().where('event_id', '=', event.event_id).executeTakeFirst();
    if (stored) return stored;
    await sql`select pg_advisory_xact_lock(${LEDGER_LOCK_KEY})`.execute(trx);
    // A separate statement from the lock: its snapshot must be taken after the lock is granted, so
    // that it sees the entry the previous holder committed. One round trip for both reads: the entry
    // (appended meanwhile by a concurrent writer) and the head of the chain.
    const { rows } = await sql<AuditEventRow & { found_as: 'existing' | 'head' }>`
      (select *, 'existing' as found_as from audit_events where event_id = ${event.event_id})
      union all
      (select *, 'head' as found_as from audit_events order by seq desc limit 1)`.execute(trx);
    const existing = rows.find((row) => row.found_as === 'existing');
    if (existing) {
      const { found_as: _found, ...row } = existing;
      return row;
    }
    const last = rows.find((row) => row.found_as === 'head');
    const seq = String(BigInt(last?.seq ?? '0') + 1n);
    const prevHash = last?.hash ?? GENESIS_HASH;
    const fields = {
      seq,
      event_id: event.event_id,
      tenant_id: event.tenant_id,
      vm_id: event.vm_id ?? null,
      event_type: event.event_type,
      // Stored with millisecond precision so the hash recomputes exactly from the row.
      occurred_at: new Date((event.occurred_at ?? new Date()).getTime()),
      actor_token_id: event.context.actor_token_id,
      actor_scope: event.context.actor_scope,
      source_ip: event.context.source_ip,
      user_agent: event.context.user_agent,
      request_id: event.context.request_id,
      // The caller's own X-Request-Id rides in details (already hashed), so the hashed field set is unchanged.
      details: event.context.client_request_id ? { ...event.details, client_request_id: event.context.client_request_id } : (event.details ?? {}),
    };
    const hash = entryHash(prevHash, fields);
    return trx
      .insertInto('audit_events')
      .values({ ...fields, details: JSON.stringify(fields.details), prev_hash: prevHash, hash })
      .returningAll()
      .executeTakeFirstOrThrow();
  };
  return db.isTransaction ? run(db as Transaction<Database>) : db.transaction().execute(run);
}

export interface AuditQuery {
  tenant_id?: string;
  vm_id?: string;
  event_type?: string;
  since?: Date;
  until?: Date;
  after_seq?: string;
  limit: number;
  order?: 'asc' | 'desc';
}

export async function listAuditEvents(db: Kysely<Database>, query: AuditQuery): Promise<AuditEventRow[]> {
  let q = db.selectFrom('audit_events').selectAll();
  if (query.tenant_id !== undefined) q = q.where('tenant_id', '=', query.tenant_id);
  if (query.vm_id !== undefined) q = q.where('vm_id', '=', query.vm_id);
  if (query.event_type !== undefined) q = q.where('event_type', '=', query.event_type);
  if (query.since !== undefined) q = q.where('occurred_at', '>=', query.since);
  if (query.until !== undefined) q = q.where('occurred_at', '<', query.until);
  const order = query.order ?? 'asc';
  if (query.after_seq !== undefined) q = q.where('seq', order === 'asc' ? '>' : '<', query.after_seq);
  return q.orderBy('seq', order).limit(query.limit).execute();
}

export interface ChainVerdict {
  valid: boolean;
  checked: number;
  first_bad_seq: string | null;
  reason: string | null;
}

/** Walks the whole chain in order and reports the first entry whose hash or link does not match. */
export async function verifyChain(db: Kysely<Database>, batchSize = 1000): Promise<ChainVerdict> {
  let prevHash = GENESIS_HASH;
  let expectedSeq = 1n;
  let checked = 0;
  let after = '0';
  for (;;) {
    const rows = await db.selectFrom('audit_events').selectAll().where('seq', '>', after).orderBy('seq', 'asc').limit(batchSize).execute();
    if (rows.length === 0) return { valid: true, checked, first_bad_seq: null, reason: null };
    for (const row of rows) {
      const bad = (reason: string): ChainVerdict => ({ valid: false, checked, first_bad_seq: row.seq, reason });
      if (BigInt(row.seq) !== expectedSeq) return bad(`sequence gap: expected ${expectedSeq}`);
      if (row.prev_hash !== prevHash) return bad('prev_hash does not match the previous entry');
      if (entryHash(prevHash, row) !== row.hash) return bad('hash does not match the entry content');
      prevHash = row.hash;
      expectedSeq += 1n;
      checked += 1;
    }
    after = rows[rows.length - 1]!.seq;
  }
}
