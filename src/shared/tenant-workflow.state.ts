import type { TenantSnapshot as LegacyTenantSnapshot } from './legacy/tenant-v1.state';
import type { CarriedTenantStateV2 } from './legacy/tenant-v2.state';
import type { VersionedQuota } from './tenant-workflow.messages';

/** The request a VM's current work serves, kept small: its ledger entries name it. */
export interface WorkCause {
  request_id: string;
  actor_token_id: string | null;
}

/**
 * A VM with work in flight that this workflow decided: admitted and booting, or being destroyed.
 * Running VMs are not listed: the workflow keeps only their totals.
 */
export interface InFlightVm {
  vm_id: string;
  storage_gb: number;
  /**
   * `pending`: a request a rebuilt run found undecided (`requested`), held conservatively until it is
   * decided: by its own update, or by the run itself after a grace period. `lost`: such a request that
   * no longer fitted; it is being failed as `admission_lost`.
   */
  phase: 'pending' | 'provisioning' | 'destroying' | 'lost';
  /**
   * How its quota comes back when its work ends. `reserved`: this workflow admitted it (or counted it
   * at a rebuild), so settling it always releases. `if_released`: a running VM, counted in the totals,
   * whose destroy began here; its quota comes back only if this teardown moved the row (a stale
   * repeat of a destroy that settled long ago releases nothing twice). `none`: never counted (lost).
   */
  release: 'reserved' | 'if_released' | 'none';
  /** Epoch ms after which a VM still not running is failed (`boot_timeout`); null for a destroy of a running VM. */
  boot_deadline_ms: number | null;
  /** Set once its boot ended in failure: the run (or the next, after continue-as-new) fails it with this reason. */
  failure?: string;
  cause: WorkCause;
}

/**
 * What a run hands to the next (continue-as-new): sized by the work in flight, never by the VMs
 * the tenant holds. Postgres holds every VM; this is the quota's serialisation state.
 */
export interface CarriedTenantState {
  state_version: 3;
  quota: VersionedQuota;
  closed: boolean;
  /** VMs holding quota (admitted, running, destroying) and their storage. */
  vms: number;
  storage_gb: number;
  in_flight: InFlightVm[];
  /** Recently settled VMs (destroyed or failed only), so a late retry of their spawn or destroy is answered, not redone. */
  recent: Array<[vmId: string, status: 'destroyed' | 'failed']>;
  /** The tenant's admission epoch this run's boots confirm under (absent: read again at the run's start). */
  admission_epoch?: number;
}

/**
 * What a rebuilt run reads, in one snapshot of Postgres, after moving the tenant to a new admission
 * epoch: totals of the rows holding quota, the ones among them in flight, and the requests undecided.
 */
export interface RebuildSnapshot {
  totals: TenantTotals;
  admission_epoch: number;
  in_flight: Array<{ vm_id: string; storage_gb: number; phase: 'provisioning' | 'destroying'; created_at_ms: number }>;
  undecided: UndecidedVm[];
}

/** A VM row still `requested` when a run rebuilds: the decision on it, if any, was lost with the run. */
export interface UndecidedVm {
  vm_id: string;
  storage_gb: number;
  created_at_ms: number;
}

export interface TenantLimits {
  /** VMs of the tenant that may be admitting, booting or being destroyed at once. */
  max_in_flight: number;
  /** A VM not running this long after admission is failed, released and destroyed at the fleet. */
  boot_timeout_ms: number;
}

export interface TenantWorkflowInput {
  tenant_id: string;
  /** After continue-as-new: the previous run's state (state version 3 or 2, or a version-1 snapshot). */
  carried?: CarriedTenantState | CarriedTenantStateV2 | LegacyTenantSnapshot;
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
  /**
   * `destroy_requested`: Postgres holds the VM as destroying or destroyed (a destroy the workflow may
   * not have heard); `failed`: it will not run (a fleet refusal, its row already failed or rejected).
   */
  status: 'running' | 'failed' | 'destroy_requested';
  failure_reason: string | null;
}

/** Whether the activity that ended a VM's work moved its row out of a status holding quota. */
export interface SettleOutcome {
  released: boolean;
}

/** The outcome of recordTenantDeleted. */
export type TenantDeleteOutcome = { outcome: 'deleted' } | { outcome: 'has_vms'; vms: number };
