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
   * Set by the API when Postgres already holds this VM in `provisioning` but the request is sent
   * again (a retry with the same Idempotency-Key): the admission's row committed, but Temporal lost
   * the update before accepting it (a server crash). The VM exists, so it is counted whatever the
   * quota, never refused.
   */
  adopt?: boolean;
}

export interface SpawnVmResult {
  vm_id: string;
  status: VmStatus;
}

export interface DestroyVmRequest {
  vm_id: string;
  context: RequestContext;
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

export const spawnVmUpdate = defineUpdate<SpawnVmResult, [SpawnVmRequest]>('spawnVm');
export const destroyVmUpdate = defineUpdate<DestroyVmResult, [DestroyVmRequest]>('destroyVm');
export const changeQuotaUpdate = defineUpdate<TenantUsage, [ChangeQuotaRequest]>('changeQuota');
export const closeTenantUpdate = defineUpdate<TenantUsage, [CloseTenantRequest]>('closeTenant');
export const usageQuery = defineQuery<TenantUsage>('usage');
