import { sql, type Kysely, type Transaction } from 'kysely';
import type { AuditEventType } from '../shared/audit-event-types';
import type { RequestContext } from '../shared/request-context';
import type { AuditEventRow, Database } from '../db/tables';
import { entryHash, GENESIS_HASH, tenantEntryHash } from './ledger-hash';

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
 * Appends one entry to the hash-chained ledger. The database assigns seq and prev_hash and computes
 * the hash (trigger audit_events_extend_chain, which takes the chain lock itself); this function
 * takes the same lock first so that it can answer a repeated event id (a retried activity or
 * request) with the stored entry instead of writing it twice.
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
    // that it sees an entry with this id that a concurrent writer committed meanwhile.
    const existing = await trx.selectFrom('audit_events').selectAll().where('event_id', '=', event.event_id).executeTakeFirst();
    if (existing) return existing;
    return trx
      .insertInto('audit_events')
      .values({
        event_id: event.event_id,
        tenant_id: event.tenant_id,
        vm_id: event.vm_id ?? null,
        event_type: event.event_type,
        occurred_at: event.occurred_at ?? new Date(),
        actor_token_id: event.context.actor_token_id,
        actor_scope: event.context.actor_scope,
        source_ip: event.context.source_ip,
        user_agent: event.context.user_agent,
        request_id: event.context.request_id,
        // The caller's own X-Request-Id rides in details (hashed like the rest of them).
        details: JSON.stringify(event.context.client_request_id ? { ...event.details, client_request_id: event.context.client_request_id } : (event.details ?? {})),
      })
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

/** The seq of an entry named by its event id, within a tenant when one is given: a page cursor. */
export async function findAuditSeq(db: Kysely<Database>, eventId: string, tenantId: string | undefined): Promise<string | undefined> {
  let q = db.selectFrom('audit_events').select('seq').where('event_id', '=', eventId);
  if (tenantId !== undefined) q = q.where('tenant_id', '=', tenantId);
  return (await q.executeTakeFirst())?.seq;
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

/**
 * What is wrong with the stored chain, by kind:
 * - `forged_insert`: an entry the chain cannot hold (a sequence <= 0);
 * - `gap`: a sequence number is missing (entries deleted from the middle);
 * - `rewrite`: an entry's content no longer matches its hash, or its prev_hash no longer names the
 *   entry before it (an entry changed, or entries recomputed from some point on).
 */
export type ChainDefect = 'forged_insert' | 'gap' | 'rewrite';

export interface ChainVerdict {
  valid: boolean;
  checked: number;
  first_bad_seq: string | null;
  defect: ChainDefect | null;
  reason: string | null;
  /** The last entry that verified: what a checkpoint may sign. */
  head: ChainAnchor | null;
}

/**
 * The head of every tenant chain (and the platform chain) as of global seq `atSeq`: what a
 * checkpoint of that head commits to. Each head carries its entry's event id.
 */
export async function tenantHeadsAt(db: Kysely<Database>, atSeq: string): Promise<Array<{ tenant_id: string | null; tenant_seq: string; tenant_hash: string; event_id: string }>> {
  const { rows } = await sql<{ tenant_id: string | null; tenant_seq: string; tenant_hash: string; event_id: string }>`
    select distinct on (coalesce(tenant_id, '')) tenant_id, tenant_seq, tenant_hash, event_id
      from audit_events where seq <= ${atSeq} and seq > 0
     order by coalesce(tenant_id, ''), seq desc`.execute(db);
  return rows;
}

/** A verified entry of the chain: where a walk resumes, and what a checkpoint signs. */
export interface ChainAnchor {
  seq: string;
  event_id: string;
  hash: string;
}

/**
 * Walks the chain in order and reports the first entry whose sequence, link or hash does not
 * match. From the start it begins below 1 on purpose: a row with seq <= 0 is a forgery, not
 * something to skip. From an anchor (an entry verified before, e.g. the last checkpoint) it checks
 * only what follows, linked to the anchor's hash.
 */
export async function verifyChain(db: Kysely<Database>, batchSize = 1000, from?: ChainAnchor): Promise<ChainVerdict> {
  let prevHash = from?.hash ?? GENESIS_HASH;
  let expectedSeq = from ? BigInt(from.seq) + 1n : 1n;
  let checked = 0;
  let after: string | null = from?.seq ?? null;
  let head: ChainVerdict['head'] = from ?? null;
  // Every tenant chain, checked in the same walk. From an anchor they are not checked (the signer
  // resumes there; each tenant chain is linked by the same trigger that links the global one).
  const tenantHeads = from ? null : new Map<string, { seq: bigint; hash: string }>();
  for (;;) {
    let q = db.selectFrom('audit_events').selectAll().orderBy('seq', 'asc').limit(batchSize);
    if (after !== null) q = q.where('seq', '>', after);
    const rows = await q.execute();
    if (rows.length === 0) return { valid: true, checked, first_bad_seq: null, defect: null, reason: null, head };
    for (const row of rows) {
      const bad = (defect: ChainDefect, reason: string): ChainVerdict => ({ valid: false, checked, first_bad_seq: row.seq, defect, reason, head });
      const seq = BigInt(row.seq);
      if (seq <= 0n) return bad('forged_insert', `sequence ${row.seq} is not a ledger sequence (they start at 1)`);
      if (seq !== expectedSeq) return bad('gap', `sequence gap: expected ${expectedSeq}`);
      if (row.prev_hash !== prevHash) return bad('rewrite', 'prev_hash does not match the previous entry');
      if (entryHash(prevHash, row) !== row.hash) return bad('rewrite', 'hash does not match the entry content');
      if (tenantHeads) {
        const chain = row.tenant_id ?? '';
        const tenantHead = tenantHeads.get(chain) ?? { seq: 0n, hash: GENESIS_HASH };
        const name = row.tenant_id === null ? 'the platform chain' : `the chain of tenant ${row.tenant_id}`;
        if (BigInt(row.tenant_seq) !== tenantHead.seq + 1n) return bad('gap', `${name}: tenant_seq ${row.tenant_seq}, expected ${tenantHead.seq + 1n}`);
        if (row.tenant_prev_hash !== tenantHead.hash) return bad('rewrite', `${name}: tenant_prev_hash does not match its previous entry`);
        if (tenantEntryHash(tenantHead.hash, row) !== row.tenant_hash) return bad('rewrite', `${name}: tenant_hash does not match the entry content`);
        tenantHeads.set(chain, { seq: tenantHead.seq + 1n, hash: row.tenant_hash });
      }
      prevHash = row.hash;
      expectedSeq += 1n;
      checked += 1;
      head = { seq: row.seq, event_id: row.event_id, hash: row.hash };
    }
    after = rows[rows.length - 1]!.seq;
  }
}
