import { ApplicationFailure } from '@temporalio/activity';
import { sql, type Kysely } from 'kysely';
import type { Database } from '../db/tables';
import { tenantLifecycleEventId } from '../ledger/deterministic-ids';
import { appendAuditEvent } from '../ledger/ledger-append';
import type { LedgerWriter } from '../ledger/ledger-writer';
import { FailureType } from '../shared/failure-types';
import type { VmStatus } from '../shared/vm';
import type { RequestContext } from '../shared/request-context';
import type { RebuildSnapshot, TenantDeleteOutcome } from '../shared/tenant-workflow.state';
import { findTenant, markTenantDeleted } from '../tenants/tenant.repository';
import { tenantVmTotals } from '../vms/vm.repository';

// Bounded so the snapshot stays far below Temporal's payload limits (about 100 bytes a request).
const MAX_UNDECIDED = 2000;

export function createTenantActivities({ db, ledger, now }: { db: Kysely<Database>; ledger: LedgerWriter; now: () => Date }) {
  return {
    /**
     * A rebuild's one read, in one snapshot (repeatable read): the tenant moves to the run's admission
     * epoch (its start time: a boot of the lost run can no longer confirm a row), then its quota, totals, VMs in flight
     * and requests undecided are read as of that same instant. A row confirmed between two separate
     * reads would otherwise be listed but not counted. At most MAX_UNDECIDED requests, oldest first:
     * any beyond are left `requested`, for the resolver to have decided as new ones.
     */
    async loadTenantForRebuild({ tenant_id, epoch: runEpoch }: { tenant_id: string; epoch: number }): Promise<RebuildSnapshot> {
      return db
        .transaction()
        .setIsolationLevel('repeatable read')
        .execute(async (trx) => {
          // The run's own epoch, only ever raised: a retried or late attempt of this read sets the same value.
          const epoch = await trx
            .updateTable('tenants')
            .set({ admission_epoch: sql<number>`greatest(admission_epoch, ${runEpoch})` })
            .where('tenant_id', '=', tenant_id)
            .returning('admission_epoch')
            .executeTakeFirst();
          const tenant = await findTenant(trx, tenant_id, { includeDeleted: true });
          if (!tenant || !epoch) throw ApplicationFailure.create({ type: FailureType.InvalidRequest, message: `no tenant ${tenant_id}`, nonRetryable: true });
          const totals = await tenantVmTotals(trx, tenant_id);
          const rows = await trx
            .selectFrom('vms')
            .select(['vm_id', 'storage_gb', 'status', 'created_at'])
            .where('tenant_id', '=', tenant_id)
            .where('status', 'in', ['provisioning', 'destroying'])
            .orderBy('vm_id')
            .execute();
          const undecided = await trx
            .selectFrom('vms')
            .select(['vm_id', 'storage_gb', 'created_at'])
            .where('tenant_id', '=', tenant_id)
            .where('status', '=', 'requested')
            .orderBy('created_at')
            .orderBy('vm_id')
            .limit(MAX_UNDECIDED)
            .execute();
          return {
            totals: {
              quota: { max_vms: tenant.max_vms, storage_quota_gb: tenant.storage_quota_gb, version: tenant.quota_version },
              closed: tenant.deleted_at !== null,
              ...totals,
            },
            // Its own epoch even if a newer run raised it further: then this run is superseded and its boots cannot confirm.
            admission_epoch: runEpoch,
            in_flight: rows.map((row) => ({
              vm_id: row.vm_id,
              storage_gb: row.storage_gb,
              phase: row.status === 'destroying' ? 'destroying' : 'provisioning',
              created_at_ms: row.created_at.getTime(),
            })),
            undecided: undecided.map((row) => ({ vm_id: row.vm_id, storage_gb: row.storage_gb, created_at_ms: row.created_at.getTime() })),
          };
        });
    },

    /** The tenant's admission epoch now (a run continued from an older version confirms under it). */
    async readAdmissionEpoch({ tenant_id }: { tenant_id: string }): Promise<number> {
      const row = await db.selectFrom('tenants').select('admission_epoch').where('tenant_id', '=', tenant_id).executeTakeFirst();
      return Number(row?.admission_epoch ?? 0);
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
        await appendAuditEvent(trx, {
          event_id: tenantLifecycleEventId(tenant_id, 'TENANT_DELETED'),
          event_type: 'TENANT_DELETED',
          tenant_id,
          occurred_at: at,
          context,
        });
        return { outcome: 'deleted' };
      });
    },
  };
}
