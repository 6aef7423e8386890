import type { AuditEventRow } from '../db/tables';

/**
 * The version of the payload's shape (docs/asyncapi.yaml, docs/events.md "Payload"). Raised only
 * when a field changes meaning or goes away; a field added beside the others keeps it.
 */
export const EVENT_SCHEMA_VERSION = 1;

/**
 * What every lifecycle event on NATS carries: its schema version, the owner fields, then the step's
 * details. No platform-wide position: `tenant_seq` is the entry's place in its owner's own chain
 * (the tenant's, or the platform chain for `_platform` subjects), so a tenant's consumer learns
 * nothing of other tenants' activity from it. The ledger's global `seq` stays out of every payload.
 */
export interface LifecycleEvent {
  schema_version: typeof EVENT_SCHEMA_VERSION;
  event_id: string;
  event_type: string;
  tenant_id: string | null;
  vm_id: string | null;
  request_id: string | null;
  occurred_at: string;
  tenant_seq: string;
  actor: { token_id: string | null; scope: string | null };
  details: Record<string, unknown>;
}

export function toLifecycleEvent(row: AuditEventRow): LifecycleEvent {
  return {
    schema_version: EVENT_SCHEMA_VERSION,
    event_id: row.event_id,
    event_type: row.event_type,
    tenant_id: row.tenant_id,
    vm_id: row.vm_id,
    request_id: row.request_id,
    occurred_at: row.occurred_at.toISOString(),
    tenant_seq: String(row.tenant_seq),
    actor: { token_id: row.actor_token_id, scope: row.actor_scope },
    details: row.details,
  };
}
