import { ApplicationFailure } from '@temporalio/activity';
import { sql, type Kysely, type Transaction } from 'kysely';
import type { Database } from '../../db/tables';
import type { LedgerWriter } from '../../ledger/ledger-writer';
import { FailureType } from '../../shared/failure-types';
import type { DestroyRecordOutcome, InFlightPage, SpawnRecordOutcome } from '../../shared/legacy/tenant-v2.state';
import type { RequestContext } from '../../shared/request-context';
import type { SpawnVmRequest } from '../../shared/tenant-workflow.messages';
import type { TenantTotals } from '../../shared/tenant-workflow.state';
import type { VmShape, VmStatus } from '../../shared/vm';
import { findTenant } from '../../tenants/tenant.repository';
import { findTenantVm, STATUSES_IN_FLIGHT, tenantVmTotals, transitionVm } from '../../vms/vm.repository';
import { recordVmStep } from '../../ledger/vm-steps';

const OWN_TRANSITION = { afterOwnTransition: true };

/** Inserts the VM in status provisioning, only while its tenant is live and only if the id is new. */
async function insertVmForLiveTenant(db: Transaction<Database>, vm: { vm_id: string; tenant_id: string; shape: VmShape; created_at: Date }): Promise<boolean> {
  const { vcpus, memory_mb, storage_gb, image, name } = vm.shape;
  const result = await sql`
    insert into vms (vm_id, tenant_id, name, vcpus, memory_mb, storage_gb, image, status, created_at, updated_at)
    select ${vm.vm_id}, ${vm.tenant_id}, ${name}, ${vcpus}, ${memory_mb}, ${storage_gb}, ${image}, 'provisioning', ${vm.created_at}, ${vm.created_at}
    where exists (select 1 from tenants where tenant_id = ${vm.tenant_id} and deleted_at is null)
    on conflict (vm_id) do nothing`.execute(db);
  return Number(result.numAffectedRows ?? 0) > 0;
}

/** One page of the tenant's VMs requested or with work in flight, by vm_id (the state-version-2 rebuild's read). */
async function listInFlightVmRows(db: Kysely<Database>, tenantId: string, after: string | null, limit: number) {
  let q = db
    .selectFrom('vms')
    .select(['vm_id', 'storage_gb', 'status', 'created_at'])
    .where('tenant_id', '=', tenantId)
    .where('status', 'in', ['requested', ...STATUSES_IN_FLIGHT]);
  if (after !== null) q = q.where('vm_id', '>', after);
  return q.orderBy('vm_id').limit(limit).execute();
}

/**
 * The activities only tenant-workflow runs started before the admission-v3 patch call
 * (workflows/legacy/tenant-v2.ts): the local activities that record a spawn or a destroy inside the
 * update, and the rebuild's two reads. Kept for replay only: removed with the rest of the frozen
 * code (src/workflows/legacy/README.md).
 */
export function createLegacyV2Activities({ db, ledger, now }: { db: Kysely<Database>; ledger: LedgerWriter; now: () => Date }) {
  const recorded = <T>(work: (trx: Transaction<Database>) => Promise<T>): Promise<T> => ledger.run(work);
  return {
    /** The tenant's quota and what it holds (runs of state version 2 rebuild with it; replay only). */
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

    /** One page of the VMs whose work a rebuilt run must resume (runs of state version 2; replay only). */
    async listInFlightVms({ tenant_id, after, limit }: { tenant_id: string; after: string | null; limit: number }): Promise<InFlightPage> {
      const rows = await listInFlightVmRows(db, tenant_id, after, limit);
      const page: InFlightPage = { in_flight: [], undecided: [], next_after: rows.length < limit ? null : rows[rows.length - 1]!.vm_id };
      for (const row of rows) {
        const createdAtMs = row.created_at.getTime();
        if (row.status === 'requested') page.undecided.push({ vm_id: row.vm_id, storage_gb: row.storage_gb, created_at_ms: createdAtMs });
        else
          page.in_flight.push({
            vm_id: row.vm_id,
            storage_gb: row.storage_gb,
            phase: row.status === 'destroying' ? 'destroying' : 'provisioning',
            created_at_ms: createdAtMs,
          });
      }
      return page;
    },

    /**
     * Writes the admitted VM's row (status provisioning) and VM_SPAWN_REQUESTED in one transaction,
     * before the workflow answers the spawn. Repeatable: a VM still provisioning is this admission's.
     */
    async recordSpawnAdmitted({ tenant_id, request }: { tenant_id: string; request: SpawnVmRequest }): Promise<SpawnRecordOutcome> {
      const createdAt = new Date(request.created_at);
      return recorded(async (trx) => {
        if (await insertVmForLiveTenant(trx, { vm_id: request.vm_id, tenant_id, shape: request.shape, created_at: createdAt })) {
          await recordVmStep(
            trx,
            { tenant_id, vm_id: request.vm_id, event_type: 'VM_SPAWN_REQUESTED', context: request.context, at: createdAt, details: { shape: request.shape } },
            OWN_TRANSITION,
          );
          return { outcome: 'recorded' };
        }
        const existing = await findTenantVm(trx, tenant_id, request.vm_id);
        if (!existing) return { outcome: 'tenant_deleted' };
        // Recorded by an API of the current protocol before it asked: this run's admission confirms it.
        if (existing.status === 'requested' && (await transitionVm(trx, request.vm_id, ['requested'], 'provisioning', createdAt)))
          return { outcome: 'recorded' };
        // Only the admission that reserved it can have written a row still provisioning (an earlier
        // attempt of this activity); any later status is a VM settled long ago.
        return existing.status === 'provisioning' ? { outcome: 'recorded' } : { outcome: 'exists', status: existing.status as VmStatus };
      });
    },

    /** Moves the VM to destroying and records VM_DESTROY_REQUESTED, before the workflow answers the destroy. */
    async recordDestroyRequested({ tenant_id, vm_id, context }: { tenant_id: string; vm_id: string; context: RequestContext }): Promise<DestroyRecordOutcome> {
      const at = now();
      return recorded(async (trx) => {
        const row = await findTenantVm(trx, tenant_id, vm_id);
        if (!row) return { outcome: 'not_found' };
        if (await transitionVm(trx, vm_id, ['provisioning', 'running'], 'destroying', at)) {
          await recordVmStep(trx, { tenant_id, vm_id, event_type: 'VM_DESTROY_REQUESTED', context, at }, OWN_TRANSITION);
          return { outcome: 'recorded', storage_gb: row.storage_gb };
        }
        // Already destroying: recorded by an earlier attempt (whose update the workflow may have lost).
        if (row.status === 'destroying') return { outcome: 'recorded', storage_gb: row.storage_gb };
        return { outcome: 'unchanged', status: row.status as VmStatus };
      });
    },
  };
}
