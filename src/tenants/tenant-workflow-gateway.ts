import type { RequestContext } from '../shared/request-context';
import type { SpawnVmRequest, SpawnVmResult, DestroyVmResult, TenantQuota, TenantUsage } from '../shared/tenant-workflow.messages';

/** What the API needs from the per-tenant workflows; implemented over the Temporal client. */
export interface TenantWorkflowGateway {
  /** Starts the tenant's workflow if it is not running; never fails the caller for a running one. */
  ensureStarted(tenantId: string, quota: TenantQuota): Promise<void>;
  changeQuota(tenantId: string, quota: TenantQuota, context: RequestContext): Promise<void>;
  /** Closes the tenant to new work; throws a TenantHasVms failure while VMs hold quota. */
  close(tenantId: string, context: RequestContext): Promise<void>;
  spawn(tenantId: string, request: SpawnVmRequest): Promise<SpawnVmResult>;
  destroy(tenantId: string, vmId: string, context: RequestContext): Promise<DestroyVmResult>;
  usage(tenantId: string): Promise<TenantUsage | null>;
}
