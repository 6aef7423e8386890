import type { VersionedQuota } from '../tenant-workflow.messages';
import type { VmStatus } from '../vm';
import type { WorkCause } from '../tenant-workflow.state';

/**
 * The state-version-2 shapes, frozen with the workflow that carried them (workflows/legacy/tenant-v2.ts).
 * Runs started by that code replay on it; their carried state is converted at their next continue-as-new.
 */
export interface InFlightVmV2 {
  vm_id: string;
  storage_gb: number;
  phase: 'admitting' | 'provisioning' | 'destroying';
  cause: WorkCause;
}

export interface CarriedTenantStateV2 {
  state_version: 2;
  quota: VersionedQuota;
  closed: boolean;
  vms: number;
  storage_gb: number;
  in_flight: InFlightVmV2[];
  recent: Array<[vmId: string, status: VmStatus]>;
}
