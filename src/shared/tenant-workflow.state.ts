import type { TenantSnapshot as LegacyTenantSnapshot } from './legacy/tenant-v1.state';
import type { VersionedQuota } from './tenant-workflow.messages';
import type { VmStatus } from './vm';

/** The request a VM's current work serves, kept small: its ledger entries name it. */
export interface WorkCause {
  request_id: string;
  actor_token_id: string | null;
}

/**
 * A VM with work in flight: being admitted (its row not yet confirmed in Postgres), booting, or
 * being destroyed. Running VMs are not listed: the workflow keeps only their totals.
 */
export interface InFlightVm {
  vm_id: string;
  storage_gb: number;
  phase: 'admitting' | 'provisioning' | 'destroying';
  cause: WorkCause;
}

/**
 * What a run hands to the next (continue-as-new): sized by the work in flight, never by the VMs
 * the tenant holds. Postgres holds every VM; this is the quota's serialisation state.
 */
export interface CarriedTenantState {
  state_version: 2;
  quota: VersionedQuota;
  closed: boolean;
  /** VMs holding quota (provisioning, running, destroying) and their storage. */
  vms: number;
  storage_gb: number;
  in_flight: InFlightVm[];
  /** Recently settled VMs, so a late retry of their spawn or destroy is answered, not redone. */
  recent: Array<[vmId: string, status: VmStatus]>;
}

export interface TenantLimits {
  /** VMs of the tenant that may be admitting, booting or being destroyed at once. */
  max_in_flight: number;
  /** A VM not running this long after admission is failed, released and destroyed at the fleet. */
  boot_timeout_ms: number;
}

export interface TenantWorkflowInput {
  tenant_id: string;
  /** After continue-as-new: the previous run's state (state version 2, or a version-1 snapshot). */
  carried?: CarriedTenantState | LegacyTenantSnapshot;
  /** Continue-as-new after this many updates in one run (Temporal caps a run at 2,000 updates). */
  continue_as_new_after_updates?: number;
  limits?: Partial<TenantLimits>;
}

/** The tenant as Postgres holds it, read when a run starts without carried state. */
export interface TenantTotals {
  quota: VersionedQuota;
  closed: boolean;
  vms: number;
  storage_gb: number;
}

export interface BootOutcome {
  /** `destroy_requested`: Postgres holds the VM as destroying (a destroy the workflow may not have heard). */
  status: 'running' | 'failed' | 'destroy_requested';
  failure_reason: string | null;
}

export type SpawnRecordOutcome =
  | { outcome: 'recorded' }
  /** The VM id is already in Postgres (a late retry of a settled VM): answer its status. */
  | { outcome: 'exists'; status: VmStatus }
  | { outcome: 'tenant_deleted' };

export type DestroyRecordOutcome =
  | { outcome: 'recorded'; storage_gb: number }
  /** Not running or provisioning in Postgres: nothing to destroy (already going or gone). */
  | { outcome: 'unchanged'; status: VmStatus }
  | { outcome: 'not_found' };

export type TenantDeleteOutcome = { outcome: 'deleted' } | { outcome: 'has_vms'; vms: number };
