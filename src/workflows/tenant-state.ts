import type { InFlightLimitDetails, QuotaExceededDetails, SpawnVmRequest, TenantUsage, VersionedQuota } from '../shared/tenant-workflow.messages';
import type { CarriedTenantState, InFlightVm, TenantTotals, UndecidedVm, WorkCause } from '../shared/tenant-workflow.state';

export const RECENT_MEMORY = 200;

export type SpawnRefusal =
  { type: 'TenantClosed' } | { type: 'InFlightLimit'; details: InFlightLimitDetails } | { type: 'QuotaExceeded'; details: QuotaExceededDetails };

/** What the workflow answers for a VM it has decided: its work, or how it ended. */
export type DecidedStatus = 'provisioning' | 'destroying' | 'destroyed' | 'failed';

const DECIDED_BY_PHASE: Record<InFlightVm['phase'], DecidedStatus | null> = {
  pending: null,
  provisioning: 'provisioning',
  destroying: 'destroying',
  lost: 'failed',
};

export type SettledStatus = 'destroyed' | 'failed';

/**
 * The tenant's quota state, pure (no I/O, no Temporal): totals of what the tenant holds, the VMs
 * with work in flight, and a bounded memory of recently settled ids. Every method is synchronous,
 * so a check and the reservation that follows it happen with no other message in between: that
 * step is the one durable decision of an admission (docs/admission-protocol.md).
 */
export class TenantState {
  quota: VersionedQuota;
  closed: boolean;
  /** Set while a delete is being recorded: spawns are refused from the moment it is asked. */
  closing = false;
  vms: number;
  storageGb: number;
  /** The admission epoch this run confirms rows under (null until read, for a run continued from an older version). */
  epoch: number | null = null;
  readonly inFlight = new Map<string, InFlightVm>();
  private readonly recent = new Map<string, SettledStatus>();

  constructor(
    readonly tenantId: string,
    readonly maxInFlight: number,
    totals: TenantTotals,
    inFlight: Iterable<InFlightVm> = [],
    recent: Iterable<[string, SettledStatus]> = [],
  ) {
    this.quota = { ...totals.quota };
    this.closed = totals.closed;
    this.vms = totals.vms;
    this.storageGb = totals.storage_gb;
    for (const vm of inFlight) this.inFlight.set(vm.vm_id, { ...vm, cause: { ...vm.cause } });
    for (const [vmId, status] of recent) this.remember(vmId, status);
  }

  static fromCarried(tenantId: string, maxInFlight: number, carried: CarriedTenantState): TenantState {
    const state = new TenantState(tenantId, maxInFlight, carried, carried.in_flight, carried.recent);
    state.epoch = carried.admission_epoch ?? null;
    return state;
  }

  /**
   * A run rebuilt from Postgres. Rows still `requested` may hold a decision the lost run made (and a
   * 202 its client holds), or none. Each is held `pending`, in order, counted while it fits the quota
   * (so no new request takes the room a lost admission needs), until decidePending decides it: at its
   * own spawn update, or after a grace period if none comes.
   */
  static rebuilt(
    tenantId: string,
    maxInFlight: number,
    totals: TenantTotals,
    inFlight: Iterable<InFlightVm>,
    undecided: readonly UndecidedVm[],
    bootTimeoutMs: number,
    epoch: number | null = null,
  ): TenantState {
    const state = new TenantState(tenantId, maxInFlight, totals, inFlight);
    state.epoch = epoch;
    for (const vm of undecided) {
      const fits = state.refusalFor(vm.storage_gb, state.quota, true) === null;
      state.inFlight.set(vm.vm_id, {
        vm_id: vm.vm_id,
        storage_gb: vm.storage_gb,
        phase: 'pending',
        release: fits ? 'reserved' : 'none',
        boot_deadline_ms: vm.created_at_ms + bootTimeoutMs,
        cause: RECOVERY_CAUSE,
      });
      if (fits) state.count(vm.storage_gb);
    }
    return state;
  }

  /** The requests a rebuilt run still holds undecided. */
  pendingIds(): string[] {
    return [...this.inFlight.values()].filter((vm) => vm.phase === 'pending').map((vm) => vm.vm_id);
  }

  /**
   * Takes a pending request out of its conservative hold, to be decided now like any other
   * (admitted or refused by the caller). False when `vmId` is not pending.
   */
  releasePending(vmId: string): boolean {
    const vm = this.inFlight.get(vmId);
    if (vm?.phase !== 'pending') return false;
    this.inFlight.delete(vmId);
    if (vm.release === 'reserved') this.count(-vm.storage_gb, -1);
    return true;
  }

  /**
   * Decides a pending request now, against the quota like any new one: admitted (its boot deadline
   * kept), or `lost`, to be failed as admission_lost and counted nowhere (its row may have been
   * confirmed by the lost run's boot meanwhile: failing it is the only safe end). Null when `vmId`
   * is not pending. `cause`: the request that asked, when one did.
   */
  decidePending(vmId: string, cause?: WorkCause): { vm: InFlightVm; refusal: SpawnRefusal | null } | null {
    const pending = this.inFlight.get(vmId);
    if (pending?.phase !== 'pending') return null;
    const vm = cause ? { ...pending, cause } : pending;
    this.releasePending(vmId);
    const refusal = this.refusalFor(vm.storage_gb, this.quota, true);
    if (refusal) {
      const lost: InFlightVm = { ...vm, phase: 'lost', release: 'none', boot_deadline_ms: null };
      this.inFlight.set(vmId, lost);
      return { vm: lost, refusal };
    }
    return { vm: this.reserve(vmId, vm.storage_gb, vm.boot_deadline_ms ?? 0, vm.cause), refusal: null };
  }

  /** Takes `quota` if it is newer than the one held; a stale one is ignored. */
  applyQuota(quota: VersionedQuota | undefined): boolean {
    if (!quota || quota.version <= this.quota.version) return false;
    this.quota = { max_vms: quota.max_vms, storage_quota_gb: quota.storage_quota_gb, version: quota.version };
    return true;
  }

  /** The status of a VM this workflow has decided and still remembers, or null. */
  decided(vmId: string): DecidedStatus | null {
    const vm = this.inFlight.get(vmId);
    if (vm) return DECIDED_BY_PHASE[vm.phase];
    return this.recent.get(vmId) ?? null;
  }

  /** Why `request` cannot be admitted now, judged against the newer of the held quota and the request's. */
  spawnRefusal(request: SpawnVmRequest): SpawnRefusal | null {
    const quota = request.quota && request.quota.version > this.quota.version ? request.quota : this.quota;
    return this.refusalFor(request.shape.storage_gb, quota);
  }

  /**
   * Admits a new VM: reserves its quota and lists it in flight with its boot deadline. Call only
   * after spawnRefusal answered null, with no await between.
   */
  admit(request: SpawnVmRequest, nowMs: number, bootTimeoutMs: number): InFlightVm {
    return this.reserve(request.vm_id, request.shape.storage_gb, nowMs + bootTimeoutMs, causeOf(request.context));
  }

  /**
   * A destroy of a VM not in flight here: a running one, counted in the totals. It is listed in
   * flight (a concurrent destroy of the same VM then answers `destroying`); its quota comes back when
   * its teardown moves the row.
   */
  trackDestroy(vmId: string, storageGb: number, cause: WorkCause): InFlightVm {
    const vm: InFlightVm = { vm_id: vmId, storage_gb: storageGb, phase: 'destroying', release: 'if_released', boot_deadline_ms: null, cause };
    this.inFlight.set(vmId, vm);
    return vm;
  }

  /**
   * The VM's work is over and it holds no quota any more (destroyed, or failed). `released`: the
   * ending activity moved its row out of a status holding quota.
   */
  settle(vmId: string, status: SettledStatus, released: boolean): void {
    const vm = this.inFlight.get(vmId);
    if (!vm) return;
    this.inFlight.delete(vmId);
    if (vm.release === 'reserved' || (vm.release === 'if_released' && released)) this.count(-vm.storage_gb, -1);
    // A lost request ends refused: asked again (its next attempt), it is decided anew, not answered from memory.
    if (vm.phase !== 'lost') this.remember(vmId, status);
  }

  /** The VM booted: it keeps its quota and leaves the in-flight list. */
  markRunning(vmId: string): void {
    if (this.inFlight.get(vmId)?.phase === 'provisioning') this.inFlight.delete(vmId);
  }

  usage(runUpdates: number): TenantUsage {
    let provisioning = 0;
    let destroying = 0;
    for (const vm of this.inFlight.values()) {
      if (vm.phase === 'provisioning' || vm.phase === 'pending') provisioning++;
      else destroying++;
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
      state_version: 3,
      quota: { ...this.quota },
      closed: this.closed,
      vms: this.vms,
      storage_gb: this.storageGb,
      in_flight: [...this.inFlight.values()].map((vm) => ({ ...vm, cause: { ...vm.cause } })),
      recent: [...this.recent.entries()],
      ...(this.epoch === null ? {} : { admission_epoch: this.epoch }),
    };
  }

  private refusalFor(storageGb: number, quota: VersionedQuota, ignoreInFlightLimit = false): SpawnRefusal | null {
    if (this.closed || this.closing) return { type: 'TenantClosed' };
    if (!ignoreInFlightLimit && this.inFlight.size >= this.maxInFlight)
      return { type: 'InFlightLimit', details: { in_flight: this.inFlight.size, limit: this.maxInFlight } };
    if (this.vms + 1 > quota.max_vms) {
      return { type: 'QuotaExceeded', details: { limit: 'max_vms', limit_value: quota.max_vms, in_use: this.vms, requested: 1 } };
    }
    if (this.storageGb + storageGb > quota.storage_quota_gb) {
      return {
        type: 'QuotaExceeded',
        details: { limit: 'storage_quota_gb', limit_value: quota.storage_quota_gb, in_use: this.storageGb, requested: storageGb },
      };
    }
    return null;
  }

  private reserve(vmId: string, storageGb: number, bootDeadlineMs: number, cause: WorkCause): InFlightVm {
    const vm: InFlightVm = { vm_id: vmId, storage_gb: storageGb, phase: 'provisioning', release: 'reserved', boot_deadline_ms: bootDeadlineMs, cause };
    this.inFlight.set(vmId, vm);
    this.count(storageGb);
    return vm;
  }

  private count(storageGb: number, vms = 1): void {
    this.vms += vms;
    this.storageGb += storageGb;
  }

  private remember(vmId: string, status: SettledStatus): void {
    this.recent.delete(vmId);
    this.recent.set(vmId, status);
    if (this.recent.size > RECENT_MEMORY) this.recent.delete(this.recent.keys().next().value!);
  }
}

/** Work resumed from Postgres has no live request behind it. */
export const RECOVERY_CAUSE: WorkCause = { request_id: 'recovery', actor_token_id: null };

export function causeOf(context: { request_id: string; actor_token_id: string | null }): WorkCause {
  return { request_id: context.request_id, actor_token_id: context.actor_token_id };
}
