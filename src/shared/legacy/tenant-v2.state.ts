import type { VersionedQuota } from '../tenant-workflow.messages';
import type { VmStatus } from '../vm';
import type { UndecidedVm, WorkCause } from '../tenant-workflow.state';

/**
 * The state-version-2 shapes, frozen with the workflow that carried them (workflows/legacy/tenant-v2.ts);
 * deleted with it (src/workflows/legacy/README.md).
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

/** What a rebuilt run reads from Postgres besides its totals: VMs in flight and requests still undecided. */
export interface InFlightPage {
  in_flight: Array<{ vm_id: string; storage_gb: number; phase: 'provisioning' | 'destroying'; created_at_ms: number }>;
  undecided: UndecidedVm[];
  /** The last vm_id of the page, to ask for the next; null when this was the last page. */
  next_after: string | null;
}

/** Outcomes of the state-version-2 workflow's local activities. */
export type SpawnRecordOutcome = { outcome: 'recorded' } | { outcome: 'exists'; status: VmStatus } | { outcome: 'tenant_deleted' };

export type DestroyRecordOutcome = { outcome: 'recorded'; storage_gb: number } | { outcome: 'unchanged'; status: VmStatus } | { outcome: 'not_found' };
