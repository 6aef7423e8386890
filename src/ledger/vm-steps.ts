import type { Kysely, Transaction } from 'kysely';
import type { Database } from '../db/tables';
import { vmLifecycleEventId } from './deterministic-ids';
import { appendAuditEvent } from './ledger-append';
import type { AuditEventType } from '../shared/audit-event-types';
import type { RequestContext } from '../shared/request-context';

/**
 * Records one lifecycle step of a VM once, however often a retried activity gets here.
 * `options.afterOwnTransition`: see appendAuditEvent.
 */
export async function recordVmStep(
  db: Kysely<Database> | Transaction<Database>,
  step: { tenant_id: string; vm_id: string; event_type: AuditEventType; context: RequestContext; at: Date; details?: Record<string, unknown> },
  options: { afterOwnTransition?: boolean } = {},
): Promise<void> {
  await appendAuditEvent(
    db,
    {
      event_id: vmLifecycleEventId(step.vm_id, step.event_type),
      event_type: step.event_type,
      tenant_id: step.tenant_id,
      vm_id: step.vm_id,
      occurred_at: step.at,
      context: step.context,
      details: step.details,
    },
    options,
  );
}
