import { ApplicationFailure } from '@temporalio/activity';
import type { Kysely } from 'kysely';
import type { Database } from '../db/tables';
import { tenantLifecycleEventId } from '../ledger/deterministic-ids';
import { appendAuditEvent } from '../ledger/ledger.repository';
import type { LedgerWriter } from '../ledger/ledger-writer';
import { FailureType } from '../shared/failure-types';
import type { VmStatus } from '../shared/vm';
import type { RequestContext } from '../shared/request-context';
import type { InFlightPage, TenantDeleteOutcome, TenantTotals } from '../shared/tenant-workflow.state';
import { findTenant, markTenantDeleted } from '../tenants/tenant.repository';
import { listInFlightVmRows, tenantVmTotals } from '../vms/vm.repository';

export function createTenantActivities({ db, ledger, now }: { db: Kysely<Database>; ledger: LedgerWriter; now: () => Date }) {
  return {
    /** The tenant's quota and what it holds, as Postgres has them: the start of a rebuilt run. */
    async loadTenantTotals({ tenant_id }: { tenant_id: string }): Promise<TenantTotals> {
      const tenant = await findTenant(db, tenant_id, { includeDeleted: true });
      if (!tenant) throw ApplicationFailure.create({ type: FailureType.InvalidRequest, message: `no tenant ${tenant_id}`, nonRetryable: true });
      const totals = await tenantVmTotals(db, tenant_id);
      return {
        quota: { max_vms: tenant.max_vms, storage_quota_gb: tenant.storage_quota_gb, version: tenant.quota_version },
        closed: tenant.deleted_at !== null,
        ...totals,
      };
    },

    /** One page of the VMs whose work a rebuilt run must resume, and of the requests it must decide again. */
    async listInFlightVms({ tenant_id, after, limit }: { tenant_id: string; after: string | null; limit: number }): Promise<InFlightPage> {
      const rows = await listInFlightVmRows(db, tenant_id, after, limit);
      const page: InFlightPage = { in_flight: [], undecided: [], next_after: rows.length < limit ? null : rows[rows.length - 1]!.vm_id };
      for (const row of rows) {
        const createdAtMs = row.created_at.getTime();
        if (row.status === 'requested') page.undecided.push({ vm_id: row.vm_id, storage_gb: row.storage_gb, created_at_ms: createdAtMs });
        else page.in_flight.push({ vm_id: row.vm_id, storage_gb: row.storage_gb, phase: row.status === 'destroying' ? 'destroying' : 'provisioning', created_at_ms: createdAtMs });
      }
      return page;
    },

    /** The statuses of these VMs of the tenant (absent: no such row). */
    async readVmStatuses({ tenant_id, vm_ids }: { tenant_id: string; vm_ids: string[] }): Promise<Record<string, VmStatus>> {
      if (vm_ids.length === 0) return {};
      const rows = await db.selectFrom('vms').select(['vm_id', 'status']).where('tenant_id', '=', tenant_id).where('vm_id', 'in', vm_ids).execute();
      return Object.fromEntries(rows.map((row) => [row.vm_id, row.status as VmStatus]));
    },

    /**
     * Marks the tenant deleted and records TENANT_DELETED, unless a VM still holds quota. The tenant
     * workflow calls it once it has stopped admitting; it is the one writer of a tenant's deletion.
     */
    async recordTenantDeleted({ tenant_id, context }: { tenant_id: string; context: RequestContext }): Promise<TenantDeleteOutcome> {
      return ledger.run(async (trx) => {
        const tenant = await findTenant(trx, tenant_id, { includeDeleted: true, forUpdate: true });
        if (!tenant || tenant.deleted_at !== null) return { outcome: 'deleted' };
        const { vms } = await tenantVmTotals(trx, tenant_id);
        if (vms > 0) return { outcome: 'has_vms', vms };
        const at = now();
        await markTenantDeleted(trx, tenant_id, at);
        await appendAuditEvent(trx, { event_id: tenantLifecycleEventId(tenant_id, 'TENANT_DELETED'), event_type: 'TENANT_DELETED', tenant_id, occurred_at: at, context });
        return { outcome: 'deleted' };
      });
    },
  };
}
