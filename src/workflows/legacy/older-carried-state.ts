import type { TenantSnapshot as LegacyTenantSnapshot } from '../../shared/legacy/tenant-v1.state';
import type { CarriedTenantStateV2 } from '../../shared/legacy/tenant-v2.state';
import type { InFlightVm, TenantLimits, TenantTotals, TenantWorkflowInput } from '../../shared/tenant-workflow.state';
import { causeOf, RECENT_MEMORY, TenantState, type SettledStatus } from '../tenant-state';

/**
 * The state a run of the current code was handed by a run of frozen code (its continue-as-new),
 * converted to the current state. Kept only for runs whose input still carries such a state; goes
 * with the rest of this folder (README.md). Null: `carried` is already of the current state version.
 */
export function fromOlderCarriedState(
  tenantId: string,
  limits: TenantLimits,
  carried: NonNullable<TenantWorkflowInput['carried']>,
  nowMs: number,
): TenantState | null {
  if (!('state_version' in carried)) return fromV1(tenantId, limits.max_in_flight, carried, nowMs, limits.boot_timeout_ms);
  if (carried.state_version === 2) return fromV2(tenantId, limits.max_in_flight, carried as CarriedTenantStateV2, nowMs, limits.boot_timeout_ms);
  return null;
}

/**
 * A run continued from a state-version-2 run. Its VMs in flight were all reserved by it; it kept
 * no boot deadlines, so theirs run from now. It remembered running VMs too: only settled ones stay.
 */
export function fromV2(tenantId: string, maxInFlight: number, carried: CarriedTenantStateV2, nowMs: number, bootTimeoutMs: number): TenantState {
  const inFlight: InFlightVm[] = carried.in_flight.map((vm) => ({
    vm_id: vm.vm_id,
    storage_gb: vm.storage_gb,
    phase: vm.phase === 'destroying' ? 'destroying' : 'provisioning',
    release: 'reserved',
    boot_deadline_ms: vm.phase === 'destroying' ? null : nowMs + bootTimeoutMs,
    cause: vm.cause,
  }));
  return new TenantState(tenantId, maxInFlight, carried, inFlight, settledOnly(carried.recent));
}

/** A run continued from a version-1 run, which carried every VM with its full request. */
export function fromV1(tenantId: string, maxInFlight: number, legacy: LegacyTenantSnapshot, nowMs: number, bootTimeoutMs: number): TenantState {
  const inFlight: InFlightVm[] = legacy.vms
    .filter((vm) => vm.phase !== 'running' || vm.destroy !== null)
    .map((vm) => {
      const destroying = vm.phase !== 'provisioning' || vm.destroy !== null;
      return {
        vm_id: vm.vm_id,
        storage_gb: vm.storage_gb,
        phase: destroying ? 'destroying' : 'provisioning',
        release: 'reserved',
        boot_deadline_ms: destroying ? null : nowMs + bootTimeoutMs,
        cause: causeOf(vm.destroy?.context ?? vm.spawn.context),
      };
    });
  const totals: TenantTotals = {
    // Version 1 had no quota versions: 0 lets the next versioned quota in.
    quota: { ...legacy.quota, version: 0 },
    closed: legacy.closed,
    vms: legacy.vms.length,
    storage_gb: legacy.vms.reduce((sum, vm) => sum + vm.storage_gb, 0),
  };
  return new TenantState(tenantId, maxInFlight, totals, inFlight, settledOnly(legacy.settled.slice(-RECENT_MEMORY)));
}

function settledOnly(recent: ReadonlyArray<readonly [string, string]>): Array<[string, SettledStatus]> {
  return recent.filter((entry): entry is [string, SettledStatus] => entry[1] === 'destroyed' || entry[1] === 'failed');
}
