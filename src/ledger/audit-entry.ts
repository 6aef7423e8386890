import type { AuditEventRow } from '../db/tables';
import { PLATFORM_ADMIN_SCOPE } from './ledger-hash';

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
  tenant_seq: string;
  tenant_prev_hash: string;
  tenant_hash: string;
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
    tenant_seq: row.tenant_seq,
    tenant_prev_hash: row.tenant_prev_hash,
    tenant_hash: row.tenant_hash,
  };
}

/**
 * What a tenant sees of one of its entries. No global `seq`, `prev_hash` or `hash`: their gaps and
 * links would reveal other tenants' activity between two of this tenant's entries. Instead the
 * entry's place in the tenant's own chain (`tenant_seq`, `tenant_prev_hash`, `tenant_hash`), which
 * the tenant can recompute (tenantEntryHash) and prove against a signed checkpoint. No network
 * source (address, user agent) of actions the platform operator took in the tenant: those describe
 * the operator, not the tenant, and the tenant hash leaves them out. The request id stays.
 */
export interface TenantAuditEntry {
  event_id: string;
  tenant_id: string | null;
  vm_id: string | null;
  event_type: string;
  occurred_at: string;
  actor: { token_id: string | null; scope: string | null };
  source: { ip?: string | null; user_agent?: string | null; request_id: string | null };
  details: Record<string, unknown>;
  tenant_seq: string;
  tenant_prev_hash: string;
  tenant_hash: string;
}

export function toTenantAuditEntry(row: AuditEventRow): TenantAuditEntry {
  const operatorAction = row.actor_scope === PLATFORM_ADMIN_SCOPE;
  return {
    event_id: row.event_id,
    tenant_id: row.tenant_id,
    vm_id: row.vm_id,
    event_type: row.event_type,
    occurred_at: row.occurred_at.toISOString(),
    actor: { token_id: row.actor_token_id, scope: row.actor_scope },
    source: operatorAction ? { request_id: row.request_id } : { ip: row.source_ip, user_agent: row.user_agent, request_id: row.request_id },
    details: row.details,
    tenant_seq: row.tenant_seq,
    tenant_prev_hash: row.tenant_prev_hash,
    tenant_hash: row.tenant_hash,
  };
}
