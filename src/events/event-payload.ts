import type { AuditEventRow } from '../db/tables';

/** What every lifecycle event on NATS carries: the owner fields first, then the step's details. */
export interface LifecycleEvent {
  event_id: string;
  event_type: string;
  tenant_id: string | null;
  vm_id: string | null;
  request_id: string | null;
  occurred_at: string;
  ledger_seq: string;
  actor: { token_id: string | null; scope: string | null };
  details: Record<string, unknown>;
}

export function toLifecycleEvent(row: AuditEventRow): LifecycleEvent {
  return {
    event_id: row.event_id,
    event_type: row.event_type,
    tenant_id: row.tenant_id,
    vm_id: row.vm_id,
    request_id: row.request_id,
    occurred_at: row.occurred_at.toISOString(),
    ledger_seq: row.seq,
    actor: { token_id: row.actor_token_id, scope: row.actor_scope },
    details: row.details,
  };
}
