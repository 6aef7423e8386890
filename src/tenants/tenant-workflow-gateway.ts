import type { RequestContext } from '../shared/request-context';
import type { SpawnVmRequest, SpawnVmResult, DestroyVmResult, TenantUsage, VersionedQuota } from '../shared/tenant-workflow.messages';

/**
 * What the services need from the per-tenant workflows; implemented over the Temporal client.
 * Refusals come back as the workflow's ApplicationFailure (see src/shared/workflow-failures.ts).
 */
export interface TenantWorkflowGateway {
  /** Starts the tenant's workflow if it is not running; never fails the caller for a running one. */
  ensureStarted(tenantId: string): Promise<void>;
  /** Resolves once the workflow holds `quota` (or a newer one). */
  changeQuota(tenantId: string, quota: VersionedQuota, context: RequestContext): Promise<TenantUsage>;
  /** Stops admitting and records the tenant deleted; a TenantHasVms failure while VMs hold quota. */
  close(tenantId: string, context: RequestContext): Promise<void>;
  spawn(tenantId: string, request: SpawnVmRequest): Promise<SpawnVmResult>;
  /** `storageGb`: the VM's storage, from its row (the workflow releases it when the teardown lands). */
  destroy(tenantId: string, vmId: string, context: RequestContext, storageGb: number): Promise<DestroyVmResult>;
}
