import type { AuditEventRow } from '../db/tables';

/** The public shape of a ledger entry, shared by the API and the service-fs command. */
export interface AuditEntry {
  seq: string;
  event_id: string;
  tenant_id: string | null;
  vm_id: string | null;
  event_type: string;
  occurred_at: string;
  actor: { token_id: string | null; scope: string | null };
  source: { ip: string | null; user_agent: string | null; request_id: string | null };
  details: Record<string, unknown>;
  prev_hash: string;
  hash: string;
}

export function toAuditEntry(row: AuditEventRow): AuditEntry {
  return {
    seq: row.seq,
    event_id: row.event_id,
    tenant_id: row.tenant_id,
    vm_id: row.vm_id,
    event_type: row.event_type,
    occurred_at: row.occurred_at.toISOString(),
    actor: { token_id: row.actor_token_id, scope: row.actor_scope },
    source: { ip: row.source_ip, user_agent: row.user_agent, request_id: row.request_id },
    details: row.details,
    prev_hash: row.prev_hash,
    hash: row.hash,
  };
}
