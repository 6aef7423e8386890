import { sql, type Kysely } from 'kysely';
import type { AuditEventRow, Database } from '../db/tables';

/** Reads of the ledger: pages of entries, cursors, and the chain heads a checkpoint's tree holds. */
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
 * The head of every tenant chain (and the platform chain) as of global seq `atSeq`: what a
 * checkpoint of that head commits to. Each head carries its entry's event id.
 */
export async function tenantHeadsAt(
  db: Kysely<Database>,
  atSeq: string,
): Promise<Array<{ tenant_id: string | null; tenant_seq: string; tenant_hash: string; event_id: string }>> {
  const { rows } = await sql<{ tenant_id: string | null; tenant_seq: string; tenant_hash: string; event_id: string }>`
    select distinct on (coalesce(tenant_id, '')) tenant_id, tenant_seq, tenant_hash, event_id
      from audit_events where seq <= ${atSeq} and seq > 0
     order by coalesce(tenant_id, ''), seq desc`.execute(db);
  return rows;
}
