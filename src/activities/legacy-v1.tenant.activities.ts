import { ApplicationFailure } from '@temporalio/activity';
import type { Kysely } from 'kysely';
import type { Database } from '../db/tables';
import { FailureType } from '../shared/failure-types';
import type { RequestContext } from '../shared/request-context';
import type { TenantSnapshot, TrackedVm } from '../shared/legacy/tenant-v1.state';
import { findTenant } from '../tenants/tenant.repository';
import { listVmsHoldingQuota } from '../vms/vm.repository';

// Work resumed from Postgres has no live request behind it.
const RECOVERY_CONTEXT: RequestContext = { request_id: 'recovery', actor_token_id: null, actor_scope: 'system:recovery', source_ip: null, user_agent: null };

export function createLegacyTenantActivities({ db }: { db: Kysely<Database> }) {
  return {
    /** Rebuilds a tenant workflow's state from Postgres, the product's truth for quota and VMs. */
    async loadTenantSnapshot({ tenant_id }: { tenant_id: string }): Promise<TenantSnapshot> {
      const tenant = await findTenant(db, tenant_id, { includeDeleted: true });
      if (!tenant) throw ApplicationFailure.create({ type: FailureType.InvalidRequest, message: `no tenant ${tenant_id}`, nonRetryable: true });
      const rows = await listVmsHoldingQuota(db, tenant_id);
      const vms = rows.map(
        (row): TrackedVm => ({
          vm_id: row.vm_id,
          storage_gb: row.storage_gb,
          phase: row.status === 'running' ? 'running' : row.status === 'destroying' ? 'destroying' : 'provisioning',
          spawn: {
            vm_id: row.vm_id,
            shape: { vcpus: row.vcpus, memory_mb: row.memory_mb, storage_gb: row.storage_gb, image: row.image, name: row.name },
            created_at: row.created_at.toISOString(),
            context: RECOVERY_CONTEXT,
          },
          destroy: row.status === 'destroying' ? { context: RECOVERY_CONTEXT } : null,
        }),
      );
      return { quota: { max_vms: tenant.max_vms, storage_quota_gb: tenant.storage_quota_gb }, closed: tenant.deleted_at !== null, vms, settled: [] };
    },
  };
}
