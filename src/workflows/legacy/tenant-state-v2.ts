import type { TenantSnapshot as LegacyTenantSnapshot } from '../../shared/legacy/tenant-v1.state';
import type { InFlightLimitDetails, QuotaExceededDetails, SpawnVmRequest, TenantUsage, VersionedQuota } from '../../shared/tenant-workflow.messages';
import type { CarriedTenantStateV2 as CarriedTenantState, InFlightVmV2 as InFlightVm } from '../../shared/legacy/tenant-v2.state';
import type { TenantTotals, WorkCause } from '../../shared/tenant-workflow.state';
import type { VmStatus } from '../../shared/vm';

const RECENT_MEMORY = 200;

export type SpawnRefusalV2 =
  { type: 'TenantClosed' } | { type: 'InFlightLimit'; details: InFlightLimitDetails } | { type: 'QuotaExceeded'; details: QuotaExceededDetails };

/**
 * The tenant's quota state, pure (no I/O, no Temporal): totals of what the tenant holds, the VMs
 * with work in flight, and a bounded memory of recently settled ids. Every method is synchronous,
 * so a check and the reservation that follows it happen with no other message in between.
 */
/**
 * Frozen with the state-version-2 workflow (legacy/tenant-v2.ts), which replays on it. Do not change;
 * delete as ./README.md says.
 */
export class TenantStateV2 {
  quota: VersionedQuota;
  closed: boolean;
  /** Set while a delete is being recorded: spawns are refused from the moment it is asked. */
  closing = false;
  vms: number;
  storageGb: number;
  readonly inFlight = new Map<string, InFlightVm>();
  private readonly recent = new Map<string, VmStatus>();

  constructor(
    readonly tenantId: string,
    readonly maxInFlight: number,
    totals: TenantTotals,
    inFlight: Iterable<InFlightVm> = [],
    recent: Iterable<[string, VmStatus]> = [],
  ) {
    this.quota = { ...totals.quota };
    this.closed = totals.closed;
    this.vms = totals.vms;
    this.storageGb = totals.storage_gb;
    for (const vm of inFlight) this.inFlight.set(vm.vm_id, { ...vm });
    for (const [vmId, status] of recent) this.remember(vmId, status);
  }

  static fromCarried(tenantId: string, maxInFlight: number, carried: CarriedTenantState): TenantStateV2 {
    return new TenantStateV2(tenantId, maxInFlight, carried, carried.in_flight, carried.recent);
  }

  /**
   * A run continued from a version-1 run carried every VM with its full request. Only the in-flight
   * ones stay listed. Version 1 had no quota versions: 0 lets the next versioned quota in.
   */
  static fromLegacy(tenantId: string, maxInFlight: number, legacy: LegacyTenantSnapshot): TenantStateV2 {
    const inFlight: InFlightVm[] = legacy.vms
      .filter((vm) => vm.phase !== 'running' || vm.destroy !== null)
      .map((vm) => ({
        vm_id: vm.vm_id,
        storage_gb: vm.storage_gb,
        phase: vm.phase === 'provisioning' && vm.destroy === null ? 'provisioning' : 'destroying',
        cause: causeOf(vm.destroy?.context ?? vm.spawn.context),
      }));
    const totals: TenantTotals = {
      quota: { ...legacy.quota, version: 0 },
      closed: legacy.closed,
      vms: legacy.vms.length,
      storage_gb: legacy.vms.reduce((sum, vm) => sum + vm.storage_gb, 0),
    };
    return new TenantStateV2(tenantId, maxInFlight, totals, inFlight, legacy.settled.slice(-RECENT_MEMORY));
  }

  /** Takes `quota` if it is newer than the one held; a stale one is ignored. */
  applyQuota(quota: VersionedQuota | undefined): boolean {
    if (!quota || quota.version <= this.quota.version) return false;
    this.quota = { max_vms: quota.max_vms, storage_quota_gb: quota.storage_quota_gb, version: quota.version };
    return true;
  }

  /** The status to answer for a VM this workflow knows, or null for one it has never seen. */
  knownStatus(vmId: string): VmStatus | null {
    const vm = this.inFlight.get(vmId);
    if (vm) return vm.phase === 'destroying' ? 'destroying' : 'provisioning';
    return this.recent.get(vmId) ?? null;
  }

  /** Why `request` cannot be admitted now, judged against the newer of the held quota and the request's. */
  spawnRefusal(request: SpawnVmRequest): SpawnRefusalV2 | null {
    if (this.closed || this.closing) return { type: 'TenantClosed' };
    if (this.inFlight.size >= this.maxInFlight) return { type: 'InFlightLimit', details: { in_flight: this.inFlight.size, limit: this.maxInFlight } };
    const quota = request.quota && request.quota.version > this.quota.version ? request.quota : this.quota;
    if (this.vms + 1 > quota.max_vms) {
      return { type: 'QuotaExceeded', details: { limit: 'max_vms', limit_value: quota.max_vms, in_use: this.vms, requested: 1 } };
    }
    const storage = request.shape.storage_gb;
    if (this.storageGb + storage > quota.storage_quota_gb) {
      return { type: 'QuotaExceeded', details: { limit: 'storage_quota_gb', limit_value: quota.storage_quota_gb, in_use: this.storageGb, requested: storage } };
    }
    return null;
  }

  /** Reserves quota for a new VM; call only after spawnRefusal answered null, with no await between. */
  reserve(request: SpawnVmRequest): InFlightVm {
    const vm: InFlightVm = { vm_id: request.vm_id, storage_gb: request.shape.storage_gb, phase: 'admitting', cause: causeOf(request.context) };
    this.inFlight.set(vm.vm_id, vm);
    this.vms += 1;
    this.storageGb += vm.storage_gb;
    return vm;
  }

  /** Gives back a reservation whose VM never came to be (its row was never written). */
  unreserve(vmId: string): void {
    const vm = this.inFlight.get(vmId);
    if (!vm) return;
    this.inFlight.delete(vmId);
    this.vms -= 1;
    this.storageGb -= vm.storage_gb;
  }

  /** A running VM (counted in the totals, not listed) whose destroy begins: list it in flight. */
  trackDestroy(vmId: string, storageGb: number, cause: WorkCause): InFlightVm {
    const vm: InFlightVm = { vm_id: vmId, storage_gb: storageGb, phase: 'destroying', cause };
    this.inFlight.set(vmId, vm);
    return vm;
  }

  /** The VM's work is over and it holds no quota any more (destroyed, or failed). */
  settle(vmId: string, status: 'destroyed' | 'failed'): void {
    const vm = this.inFlight.get(vmId);
    if (!vm) return;
    this.inFlight.delete(vmId);
    this.vms -= 1;
    this.storageGb -= vm.storage_gb;
    this.remember(vmId, status);
  }

  /** The VM booted: it keeps its quota and leaves the in-flight list. */
  markRunning(vmId: string): void {
    if (this.inFlight.get(vmId)?.phase === 'provisioning') this.inFlight.delete(vmId);
  }

  remember(vmId: string, status: VmStatus): void {
    this.recent.delete(vmId);
    this.recent.set(vmId, status);
    if (this.recent.size > RECENT_MEMORY) this.recent.delete(this.recent.keys().next().value!);
  }

  usage(runUpdates: number): TenantUsage {
    let provisioning = 0;
    let destroying = 0;
    for (const vm of this.inFlight.values()) {
      if (vm.phase === 'destroying') destroying++;
      else provisioning++;
    }
    return {
      tenant_id: this.tenantId,
      vms: this.vms,
      storage_gb: this.storageGb,
      max_vms: this.quota.max_vms,
      storage_quota_gb: this.quota.storage_quota_gb,
      quota_version: this.quota.version,
      provisioning,
      destroying,
      closed: this.closed,
      run_updates: runUpdates,
    };
  }

  toCarried(): CarriedTenantState {
    return {
      state_version: 2,
      quota: { ...this.quota },
      closed: this.closed,
      vms: this.vms,
      storage_gb: this.storageGb,
      in_flight: [...this.inFlight.values()].map((vm) => ({ ...vm })),
      recent: [...this.recent.entries()],
    };
  }
}

export function causeOf(context: { request_id: string; actor_token_id: string | null }): WorkCause {
  return { request_id: context.request_id, actor_token_id: context.actor_token_id };
}
