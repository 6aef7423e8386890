import { sql, type Kysely } from 'kysely';
import type { Database } from '../db/tables';
import type { Logger } from '../logging/logger';
import type { RequestContext } from '../shared/request-context';
import type { TenantWorkflowGateway } from '../tenants/tenant-workflow-gateway';
import { STATUSES_IN_FLIGHT } from '../vms/vm.repository';

const RECONCILER_CONTEXT: RequestContext = { request_id: 'reconciler', actor_token_id: null, actor_scope: 'system:reconciler', source_ip: null, user_agent: null };

/**
 * Sends again the work Postgres holds but a tenant workflow may have lost. An admission writes the
 * VM row inside the spawn update, before Temporal has durably accepted the update; if the Temporal
 * server dies in between, the row stays and the update is gone. The client's retry with the same
 * Idempotency-Key heals that (the API sends the spawn again, to adopt); this heals it when no retry
 * comes. VMs still provisioning or destroying after `olderThanMs` are sent to their workflow, which
 * answers the ones it knows at once and adopts the others (counted whatever the quota: they exist).
 */
export async function resendUnsettledVms(deps: { db: Kysely<Database>; workflows: TenantWorkflowGateway; log: Logger; now: Date; olderThanMs: number; limit?: number }): Promise<{ spawns: number; destroys: number; failed: number }> {
  const before = new Date(deps.now.getTime() - deps.olderThanMs);
  const rows = await deps.db
    .selectFrom('vms')
    .innerJoin('tenants', 'tenants.tenant_id', 'vms.tenant_id')
    .selectAll('vms')
    .where('vms.status', 'in', [...STATUSES_IN_FLIGHT])
    .where('vms.updated_at', '<', before)
    .where('tenants.deleted_at', 'is', null)
    .orderBy(sql`vms.updated_at`)
    .limit(deps.limit ?? 200)
    .execute();
  const outcome = { spawns: 0, destroys: 0, failed: 0 };
  for (const row of rows) {
    try {
      if (row.status === 'provisioning') {
        const shape = { vcpus: row.vcpus, memory_mb: row.memory_mb, storage_gb: row.storage_gb, image: row.image, name: row.name };
        await deps.workflows.spawn(row.tenant_id, { vm_id: row.vm_id, shape, created_at: row.created_at.toISOString(), context: RECONCILER_CONTEXT, adopt: true });
        outcome.spawns++;
      } else {
        await deps.workflows.destroy(row.tenant_id, row.vm_id, RECONCILER_CONTEXT);
        outcome.destroys++;
      }
    } catch (error) {
      outcome.failed++;
      deps.log.warn({ err: error, tenant_id: row.tenant_id, vm_id: row.vm_id }, 'unsettled VM not sent to its workflow; next round retries');
    }
  }
  return outcome;
}
