import { defineQuery, defineUpdate } from '@temporalio/workflow';
import type { RequestContext } from './request-context';
import type { VmShape, VmStatus } from './vm';

export interface TenantQuota {
  max_vms: number;
  storage_quota_gb: number;
}

export interface SpawnVmRequest {
  vm_id: string;
  shape: VmShape;
  created_at: string;
  context: RequestContext;
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
  quota: TenantQuota;
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

export const spawnVmUpdate = defineUpdate<SpawnVmResult, [SpawnVmRequest]>('spawnVm');
export const destroyVmUpdate = defineUpdate<DestroyVmResult, [DestroyVmRequest]>('destroyVm');
export const changeQuotaUpdate = defineUpdate<TenantUsage, [ChangeQuotaRequest]>('changeQuota');
export const closeTenantUpdate = defineUpdate<TenantUsage, [CloseTenantRequest]>('closeTenant');
export const usageQuery = defineQuery<TenantUsage>('usage');
