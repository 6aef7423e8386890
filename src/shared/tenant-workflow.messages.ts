import { defineQuery, defineUpdate } from '@temporalio/workflow';
import type { RequestContext } from './request-context';
import type { VmShape, VmStatus } from './vm';

export interface TenantQuota {
  max_vms: number;
  storage_quota_gb: number;
}

/**
 * A quota with the version Postgres gave it (tenants.quota_version, +1 on every change). The
 * workflow keeps the highest version it has seen, so a stale or reordered message never rolls a
 * quota back.
 */
export interface VersionedQuota extends TenantQuota {
  version: number;
}

export interface SpawnVmRequest {
  vm_id: string;
  shape: VmShape;
  created_at: string;
  context: RequestContext;
  /** The tenant's quota as the API read it from Postgres for this request (absent from older APIs). */
  quota?: VersionedQuota;
  /**
   * Which request for this VM id this is: 1, then +1 each time a refused request is made again (a
   * retry under the same Idempotency-Key). Part of the update id, so Temporal never answers a new
   * request with an old refusal.
   */
  attempt?: number;
  /** Only in histories of state-version-2 runs (adoption, removed by docs/admission-protocol.md). */
  adopt?: boolean;
}

export interface SpawnVmResult {
  vm_id: string;
  status: VmStatus;
}

export interface DestroyVmRequest {
  vm_id: string;
  context: RequestContext;
  /** The VM's storage, from its row (absent from older APIs: the teardown reports it then). */
  storage_gb?: number;
}

export interface DestroyVmResult {
  vm_id: string;
  status: VmStatus;
}

export interface ChangeQuotaRequest {
  /** `version` is absent only in messages from APIs older than quota versions. */
  quota: TenantQuota & { version?: number };
  context: RequestContext;
}

export interface CloseTenantRequest {
  context: RequestContext;
}

export interface TenantUsage {
  tenant_id: string;
  vms: number;
  storage_gb: number;
  max_vms: number;
  storage_quota_gb: number;
  /** The version of the quota the workflow holds (0 until it has seen a versioned one). */
  quota_version?: number;
  provisioning: number;
  destroying: number;
  closed: boolean;
  run_updates: number;
}

/** Details of a QuotaExceeded failure; the API answers them in the 429 body. */
export interface QuotaExceededDetails {
  limit: 'max_vms' | 'storage_quota_gb';
  limit_value: number;
  in_use: number;
  requested: number;
}

/** Details of an InFlightLimit failure: too many VMs of the tenant are being spawned or destroyed. */
export interface InFlightLimitDetails {
  in_flight: number;
  limit: number;
}

/** The update id of a spawn: one per request for the VM, so a retry of the same request is deduplicated. */
export function spawnUpdateId(vmId: string, attempt = 1): string {
  return attempt > 1 ? `spawn-${vmId}-${attempt}` : `spawn-${vmId}`;
}

export const spawnVmUpdate = defineUpdate<SpawnVmResult, [SpawnVmRequest]>('spawnVm');
export const destroyVmUpdate = defineUpdate<DestroyVmResult, [DestroyVmRequest]>('destroyVm');
export const changeQuotaUpdate = defineUpdate<TenantUsage, [ChangeQuotaRequest]>('changeQuota');
export const closeTenantUpdate = defineUpdate<TenantUsage, [CloseTenantRequest]>('closeTenant');
export const usageQuery = defineQuery<TenantUsage>('usage');
