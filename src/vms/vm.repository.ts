import { sql, type Kysely, type Transaction } from 'kysely';
import type { Database, VmRow } from '../db/tables';
import type { VersionedQuota } from '../shared/tenant-workflow.messages';
import type { VmRecord, VmShape, VmStatus } from '../shared/vm';

type Db = Kysely<Database> | Transaction<Database>;

export function toVmRecord(row: VmRow): VmRecord {
  return {
    vm_id: row.vm_id,
    tenant_id: row.tenant_id,
    name: row.name,
    vcpus: row.vcpus,
    memory_mb: row.memory_mb,
    storage_gb: row.storage_gb,
    image: row.image,
    status: row.status as VmStatus,
    failure_reason: row.failure_reason,
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
  };
}

export async function findTenantVm(db: Db, tenantId: string, vmId: string): Promise<VmRow | undefined> {
  return db.selectFrom('vms').selectAll().where('tenant_id', '=', tenantId).where('vm_id', '=', vmId).executeTakeFirst();
}

export interface VmListQuery {
  tenant_id: string;
  status?: VmStatus;
  limit: number;
  after?: { created_at: Date; vm_id: string };
}

/** Keyset pagination over (created_at, vm_id), served by the vms_tenant_created_idx index. */
export async function listTenantVms(db: Db, query: VmListQuery): Promise<VmRow[]> {
  let q = db.selectFrom('vms').selectAll().where('tenant_id', '=', query.tenant_id);
  if (query.status) q = q.where('status', '=', query.status);
  if (query.after) {
    const { created_at, vm_id } = query.after;
    q = q.where(sql<boolean>`(created_at, vm_id) > (${created_at}, ${vm_id})`);
  }
  return q.orderBy('created_at').orderBy('vm_id').limit(query.limit).execute();
}

export const STATUSES_HOLDING_QUOTA = ['provisioning', 'running', 'destroying'] as const satisfies readonly VmStatus[];
export const STATUSES_IN_FLIGHT = ['provisioning', 'destroying'] as const satisfies readonly VmStatus[];

/**
 * Records a spawn request: the VM's row in status `requested` (holding no quota until the tenant
 * workflow admits it), only while its tenant is live and only if the id is new. Returns whether it inserted.
 */
/**
 * Inserts the VM `requested` while its tenant is live, unless the id is taken; in the same statement,
 * reads the quota it is to be decided against (so a spawn costs no separate read of the tenant).
 * Null when nothing was inserted.
 */
export async function insertRequestedVm(db: Db, vm: { vm_id: string; tenant_id: string; shape: VmShape; created_at: Date }): Promise<VersionedQuota | null> {
  const { vcpus, memory_mb, storage_gb, image, name } = vm.shape;
  const { rows } = await sql<{ max_vms: number; storage_quota_gb: number; version: number }>`
    with tenant as (select max_vms, storage_quota_gb, quota_version from tenants where tenant_id = ${vm.tenant_id} and deleted_at is null),
         inserted as (
           insert into vms (vm_id, tenant_id, name, vcpus, memory_mb, storage_gb, image, status, created_at, updated_at)
           select ${vm.vm_id}, ${vm.tenant_id}, ${name}, ${vcpus}, ${memory_mb}, ${storage_gb}, ${image}, 'requested', ${vm.created_at}, ${vm.created_at}
             from tenant
           on conflict (vm_id) do nothing
           returning vm_id)
    select tenant.max_vms, tenant.storage_quota_gb, tenant.quota_version as version from tenant, inserted`.execute(db);
  return rows[0] ?? null;
}

/** A refused request asked again (same Idempotency-Key): `rejected` → `requested`, with the next attempt number. */
export async function reRequestVm(db: Db, vmId: string, attempt: number, at: Date): Promise<boolean> {
  const result = await db
    .updateTable('vms')
    .set({ status: 'requested', admission_attempt: attempt, failure_reason: null, updated_at: at })
    .where('vm_id', '=', vmId)
    .where('status', '=', 'rejected')
    .where('admission_attempt', '=', attempt - 1)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}

/** The VMs holding quota and their storage, as one aggregate (an index-only scan at any size). */
export async function tenantVmTotals(db: Db, tenantId: string): Promise<{ vms: number; storage_gb: number }> {
  const row = await db
    .selectFrom('vms')
    .select((eb) => [eb.fn.countAll<string>().as('vms'), eb.fn.coalesce(eb.fn.sum<string>('storage_gb'), eb.lit(0)).as('storage_gb')])
    .where('tenant_id', '=', tenantId)
    .where('status', 'in', [...STATUSES_HOLDING_QUOTA])
    .executeTakeFirstOrThrow();
  return { vms: Number(row.vms), storage_gb: Number(row.storage_gb) };
}

/** Every VM holding quota, whole rows (version-1 workflow runs only: unbounded, do not use elsewhere). */
/**
 * Moves a VM to `to` only from one of `from`, so late or repeated writers cannot move it backwards
 * (a spawn finishing after a destroy request leaves it destroying). Returns whether it moved.
 */
export async function transitionVm(
  db: Db,
  vmId: string,
  from: readonly VmStatus[],
  to: VmStatus,
  at: Date,
  failureReason: string | null = null,
): Promise<boolean> {
  const result = await db
    .updateTable('vms')
    .set({ status: to, updated_at: at, ...(to === 'failed' ? { failure_reason: failureReason } : {}) })
    .where('vm_id', '=', vmId)
    .where('status', 'in', [...from])
    .executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}
