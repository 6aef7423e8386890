/** The version-1 shapes, frozen with the workflow that carried them (workflows/legacy/tenant-v1.ts); deleted with it (src/workflows/legacy/README.md). */
import type { RequestContext } from '../request-context';
import type { SpawnVmRequest, TenantQuota } from '../tenant-workflow.messages';
import type { VmStatus } from '../vm';

/** A VM the tenant workflow tracks: every VM that holds quota. */
export interface TrackedVm {
  vm_id: string;
  storage_gb: number;
  phase: 'provisioning' | 'running' | 'destroying';
  spawn: SpawnVmRequest;
  destroy: { context: RequestContext } | null;
}

/** What a tenant workflow run hands to the next one (continue-as-new), or rebuilds from Postgres. */
export interface TenantSnapshot {
  quota: TenantQuota;
  closed: boolean;
  vms: TrackedVm[];
  /** Recently settled VMs, so a late retry of their spawn or destroy is answered, not redone. */
  settled: Array<[vmId: string, status: VmStatus]>;
}

export interface TenantWorkflowInput {
  tenant_id: string;
  /** Present after continue-as-new; absent on a first start, which loads the snapshot from Postgres. */
  carried?: TenantSnapshot;
  /** Continue-as-new after this many updates in one run (Temporal caps a run at 2,000). */
  continue_as_new_after_updates?: number;
}

export interface ProvisionOutcome {
  status: 'running' | 'failed';
  failure_reason: string | null;
}
